"""The seed document's JavaScript `ChatWebSocket` client, run unchanged in Node against /ws/chat.

Only its URL and token are substituted; a `document` stub stands in for the browser page it
writes tokens into, and a harness after it exits when the answer is complete.
"""

from __future__ import annotations

import asyncio
import shutil

import pytest
from support.gateway_harness import FakeUpstream, gateway_settings, running_gateway, sql_answer

SEED_CLIENT = r"""
class ChatWebSocket {
  constructor(url, token) {
    this.url = url;
    this.token = token;
    this.ws = null;
    this.onMessage = null;
    this.onProgress = null;
    this.onComplete = null;
    this.onError = null;
  }

  connect() {
    this.ws = new WebSocket(this.url);

    this.ws.onopen = () => {
      console.log('Connected');

      // Authenticate
      if (this.token) {
        this.ws.send(JSON.stringify({
          type: 'auth',
          token: this.token
        }));
      }
    };

    this.ws.onmessage = (event) => {
      const data = JSON.parse(event.data);

      switch (data.type) {
        case 'auth_success':
          console.log('Authenticated:', data.user);
          break;

        case 'auth_error':
          if (this.onError) this.onError(data.message);
          break;

        case 'progress':
          if (this.onProgress) this.onProgress(data.step, data.message);
          break;

        case 'token':
          if (this.onMessage) this.onMessage(data.token, data.partial_response);
          break;

        case 'complete':
          if (this.onComplete) this.onComplete(data.response, data.metadata);
          break;

        case 'error':
          if (this.onError) this.onError(data.error, data.code);
          break;
      }
    };

    this.ws.onerror = (error) => {
      if (this.onError) this.onError('WebSocket error', 'CONNECTION_ERROR');
    };

    this.ws.onclose = () => {
      console.log('Disconnected');
    };
  }

  sendMessage(message, sessionId = null) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
      throw new Error('WebSocket not connected');
    }

    this.ws.send(JSON.stringify({
      type: 'message',
      message: message,
      session_id: sessionId
    }));
  }

  disconnect() {
    if (this.ws) {
      this.ws.close();
    }
  }
}

// Usage
const chat = new ChatWebSocket(
  'ws://localhost:8000/ws/chat',
  'your_jwt_token'
);

chat.onProgress = (step, message) => {
  console.log(`[${step}] ${message}`);
};

chat.onMessage = (token, partial) => {
  // Append token to UI
  document.getElementById('response').textContent += token;
};

chat.onComplete = (response, metadata) => {
  console.log('Complete:', response);
  console.log('Agent:', metadata.agent);
  console.log('Confidence:', metadata.confidence);
};

chat.onError = (error, code) => {
  console.error(`Error [${code}]: ${error}`);
};

chat.connect();

// Send message
setTimeout(() => {
  chat.sendMessage('What is the engine power?');
}, 1000);
"""

PAGE_STUB = """
const responseElement = { textContent: "" };
globalThis.document = { getElementById: () => responseElement };
"""

HARNESS = """
const seedOnComplete = chat.onComplete;
chat.onComplete = (response, metadata) => {
  seedOnComplete(response, metadata);
  console.log('Page shows:', document.getElementById('response').textContent);
  chat.disconnect();
  setTimeout(() => process.exit(0), 50);
};
setTimeout(() => { console.error('timed out'); process.exit(3); }, 15000);
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js (>= 20) on the machine")
async def test_the_seed_javascript_client_works_unchanged(upstream: FakeUpstream) -> None:
    upstream.script = sql_answer()
    async with running_gateway(gateway_settings(upstream.url)) as gw:
        client = SEED_CLIENT.replace("ws://localhost:8000/ws/chat", gw.ws_url).replace(
            "your_jwt_token", gw.token()
        )
        process = await asyncio.create_subprocess_exec(
            "node",
            "--experimental-websocket",
            "--no-warnings",
            "-e",
            PAGE_STUB + client + HARNESS,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(30):
            out, err = await process.communicate()
    text = out.decode()
    assert process.returncode == 0, (text, err.decode())
    assert "Connected" in text
    assert "Authenticated: { id: 'u-alice', company_id: 'acme-hvac' }" in text
    assert "[agent_routing] Routing your question…" in text
    assert "Complete: There are 4." in text
    assert "Agent: sql_agent" in text
    assert "Page shows: There are 4." in text
    assert "Error" not in text
