"""Flows: parse Visionatrix flow files, validate task inputs, patch values into the graph.

Pure modules (no HTTP, database or torch): ``model`` (Flow, InputParam, FlowOutput), ``parser``
(graph -> Flow), ``input_nodes`` (the VixUi*/``input;`` nodes), ``inputs`` (form values ->
typed values) and ``graph_patch`` (typed values -> a runnable graph).
"""
