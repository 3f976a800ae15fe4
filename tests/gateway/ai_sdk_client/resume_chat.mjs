// The official AI SDK `DefaultChatTransport` against the gateway: it sends a message to
// AI_URL (POST /api/chat), cuts the connection after the first text delta, then resumes with
// `reconnectToStream` (GET /api/chat/{id}/stream, what `useChat({ resume: true })` calls) and
// assembles the answer with `readUIMessageStream`. AI_TOKEN signs the send; AI_RESUME_TOKEN
// (default AI_TOKEN) the resume; AI_CHAT is the chat id.
// Lines on stdout, one JSON object each: {"step":"cut"}, {"step":"resumed"} once the resumed
// stream gave its first chunk (the test then lets the run finish), and the report last.
import { DefaultChatTransport, readUIMessageStream } from "ai";

const chatId = process.env.AI_CHAT;
const transport = (token) =>
  new DefaultChatTransport({ api: process.env.AI_URL, headers: { Authorization: `Bearer ${token}` } });
const say = (line) => console.log(JSON.stringify(line));
const partsOf = (message) =>
  (message?.parts ?? []).map((p) => [p.type, p.text ?? p.toolName ?? p.type.replace(/^tool-/, "")]);

try {
  const cut = new AbortController();
  const sent = await transport(process.env.AI_TOKEN).sendMessages({
    trigger: "submit-message",
    chatId,
    messageId: undefined,
    messages: [{ id: "u1", role: "user", parts: [{ type: "text", text: "How many?" }] }],
    abortSignal: cut.signal,
  });
  const reader = sent.getReader();
  const before = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the stream ended before its first text delta");
    before.push(value.type);
    if (value.type === "text-delta") break;
  }
  cut.abort(); // the connection is cut mid-answer
  await reader.cancel().catch(() => {});
  say({ step: "cut", before });

  const resumeToken = process.env.AI_RESUME_TOKEN ?? process.env.AI_TOKEN;
  const resumed = await transport(resumeToken).reconnectToStream({ chatId });
  if (resumed === null) {
    say({ step: "report", resumed: null });
  } else {
    let signalled = false;
    const watched = resumed.pipeThrough(
      new TransformStream({
        transform(chunk, controller) {
          if (!signalled) {
            signalled = true;
            say({ step: "resumed" });
          }
          controller.enqueue(chunk);
        },
      }),
    );
    let message;
    for await (const m of readUIMessageStream({ stream: watched, terminateOnError: true })) {
      message = m;
    }
    // Once the answer has ended, there is nothing left to resume: the transport gets null.
    const after = await transport(resumeToken).reconnectToStream({ chatId });
    say({
      step: "report",
      resumed: { id: message?.id, parts: partsOf(message), metadata: message?.metadata ?? null },
      after_end: after === null ? null : "stream",
    });
  }
} catch (error) {
  say({ step: "report", error: String(error?.message ?? error) });
}
