"""`build_graph`: the whole topology in one screen."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, get_args

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command

from agent_service.graph.nodes import Next, classify, finalize, rag_agent, sql_agent
from agent_service.graph.state import AgentState, RunContext

AgentGraph = CompiledStateGraph[AgentState, RunContext, AgentState, AgentState]
Node = Callable[[AgentState, Runtime[RunContext]], Awaitable[AgentState | Command[Any]]]


def traced(step: str, node: Node) -> _TracedNode:
    """`node` as a span `agent.<step>` of its run (no-op when tracing is off)."""
    return _TracedNode(step, node)


class _TracedNode:
    __slots__ = ("__name__", "_node", "_step")

    def __init__(self, step: str, node: Node) -> None:
        self._step = f"agent.{step}"
        self._node = node
        self.__name__ = getattr(node, "__name__", step)

    async def __call__(
        self, state: AgentState, *, runtime: Runtime[RunContext]
    ) -> AgentState | Command[Any]:
        ctx = runtime.context
        with ctx.tracer.start_as_current_span(self._step, context=ctx.trace):
            return await self._node(state, runtime)


def build_graph(checkpointer: BaseCheckpointSaver[Any] | None) -> AgentGraph:
    """classify → sql_agent | rag_agent → finalize → END, checkpointed per conversation
    (classify names its next step: `nodes.route_after_classify`)."""
    builder = StateGraph(AgentState, context_schema=RunContext)
    builder.add_node("classify", traced("classify", classify), destinations=get_args(Next))
    builder.add_node("sql_agent", traced("sql", sql_agent))
    builder.add_node("rag_agent", traced("retrieval", rag_agent))
    builder.add_node("finalize", traced("answer", finalize))
    builder.add_edge(START, "classify")
    builder.add_edge("sql_agent", "finalize")
    builder.add_edge("rag_agent", "finalize")
    builder.add_edge("finalize", END)
    return builder.compile(checkpointer=checkpointer, name="agent")
