"""`build_graph`: the whole topology in one screen."""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from agent_service.graph.nodes import classify, finalize, rag_agent, route_after_classify, sql_agent
from agent_service.graph.state import AgentState, RunContext

AgentGraph = CompiledStateGraph[AgentState, RunContext, AgentState, AgentState]


def build_graph(checkpointer: BaseCheckpointSaver[Any] | None) -> AgentGraph:
    """classify → sql_agent | rag_agent → finalize → END, checkpointed per conversation."""
    builder = StateGraph(AgentState, context_schema=RunContext)
    builder.add_node("classify", classify)
    builder.add_node("sql_agent", sql_agent)
    builder.add_node("rag_agent", rag_agent)
    builder.add_node("finalize", finalize)
    builder.add_edge(START, "classify")
    builder.add_conditional_edges("classify", route_after_classify)
    builder.add_edge("sql_agent", "finalize")
    builder.add_edge("rag_agent", "finalize")
    builder.add_edge("finalize", END)
    return builder.compile(checkpointer=checkpointer, name="agent")
