#!/usr/bin/env python3
"""Run llama.cpp's HTTP server (via the xllamacpp wheel) until SIGTERM/SIGINT. Started by .ci/llm-server.sh.

usage: llm-serve.py MODEL.gguf PORT [CTX] [--embeddings [--pooling mean|last|cls]] [--alias NAME] [--threads N]
"""
import argparse, faulthandler, signal, sys
import xllamacpp as xlc

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("port", type=int)
ap.add_argument("ctx", type=int, nargs="?", default=2048)
ap.add_argument("--embeddings", action="store_true")
ap.add_argument("--pooling", default="mean", choices=["mean", "last", "cls"])
ap.add_argument("--alias", default=None)
ap.add_argument("--threads", type=int, default=2)
a = ap.parse_args()

p = xlc.CommonParams()
p.model.path = a.model
p.hostnames = ["127.0.0.1"]
p.port = a.port
p.n_ctx = a.ctx
p.n_parallel = 1                       # one slot: the whole ctx per request
p.cpuparams.n_threads = a.threads
p.cpuparams_batch.n_threads = a.threads
p.n_threads_http = 2
p.embedding = a.embeddings
if a.embeddings:                       # the model's default pooling is 'none': /v1/embeddings rejects it
    p.pooling_type = getattr(xlc.llama_pooling_type, "LLAMA_POOLING_TYPE_" + a.pooling.upper())
p.endpoint_metrics = True
if a.alias:
    p.model_alias = {a.alias}

# Block SIGTERM/SIGINT before the C++ threads exist (they inherit the mask) and take them
# with sigwait below: otherwise the C++ handler (which only stops its loop thread) or a
# non-main thread gets them, and the process lingers.
SIGS = {signal.SIGTERM, signal.SIGINT}
signal.pthread_sigmask(signal.SIG_BLOCK, SIGS)
srv = xlc.Server(p)                    # blocks until the model is loaded and listening
print(f"serve.py: listening on {srv.listening_address}", flush=True)
signal.sigwait(SIGS)
# ~Server stops the loop and joins it; with a stream in flight that join can wait for
# the next SSE ping (sse_ping_interval, 30 s), so a C-level watchdog _exit(1)s after 3 s.
faulthandler.dump_traceback_later(3, exit=True, file=open("/dev/null", "w"))
del srv
print("serve.py: stopped", flush=True)
sys.exit(0)
