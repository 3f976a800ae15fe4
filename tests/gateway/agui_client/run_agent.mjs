// One run of the official AG-UI `HttpAgent` against the gateway: AGUI_URL, AGUI_TOKEN, AGUI_THREAD.
// Prints one JSON line: the events seen (type, and step/tool name), the messages the agent now
// holds, the run's result, or the error it failed with.
import { HttpAgent } from "@ag-ui/client";

const agent = new HttpAgent({
  url: process.env.AGUI_URL,
  headers: { Authorization: `Bearer ${process.env.AGUI_TOKEN}` },
  threadId: process.env.AGUI_THREAD,
  initialMessages: [{ id: "u1", role: "user", content: process.env.AGUI_QUESTION ?? "How many?" }],
});
const seen = [];
const report = (extra) => {
  console.log(JSON.stringify({ seen, messages: agent.messages, ...extra }));
};
try {
  const { result } = await agent.runAgent(
    { runId: "run-js-1" },
    {
      onEvent: ({ event }) => {
        seen.push([event.type, event.stepName ?? event.toolCallName ?? event.delta ?? null]);
      },
    },
  );
  report({ result });
} catch (error) {
  report({ error: String(error?.message ?? error) });
}
