"""Load tests of the served InstructionNER model against in-process baselines (``make bench``).

One run measures, on the same machine, checkpoint, sentences and generation lengths:
perf_analyzer over gRPC against ``instruction_ner`` and against the ``engine`` model alone,
plain transformers ``generate`` (batch-1 loop and batched), the PyPI ``instruction-ner``
package's own inference path, and the project's engine in-process without Triton; plus the
strict F1 of every path on the same sentences. ``bench/README.md`` explains the output.
"""
