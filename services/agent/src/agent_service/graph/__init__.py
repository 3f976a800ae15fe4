"""The LangGraph workflow: classify → sql_agent | rag_agent → finalize."""
