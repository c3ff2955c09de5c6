"""Deployment tooling: build model repositories, launch tritonserver, front it with a proxy.

Nothing here is imported by the Triton python models; they import only the runtime in
:mod:`instructner.serving`. ``build`` fills the CPU repository's templates,
``build_trtllm`` the GPU (TensorRT-LLM) one, ``server`` launches and supervises
tritonserver (``make serve``), ``proxy`` generates and runs the nginx front
(``make proxy``).
"""
