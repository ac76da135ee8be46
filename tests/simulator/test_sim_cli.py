"""`costplane simulate-upstream` serves until interrupted."""

from __future__ import annotations

import signal
import subprocess
import sys

import openai


def test_cli_serves_and_stops_on_ctrl_c() -> None:
    command = [sys.executable, "-c", "from costplane.cli.main import main; main()",
               "simulate-upstream", "--port", "0", "--log-level", "warning"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "simulator listening on http://127.0.0.1:" in line
        url = line.rsplit(" ", 1)[-1].strip()
        with openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=2, timeout=5) as client:
            reply = client.chat.completions.create(model="gpt-4o",
                                                   messages=[{"role": "user", "content": "hi"}])
        assert reply.usage is not None and reply.usage.prompt_tokens == 3 + 3 + 1
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) in (0, 130, -signal.SIGINT)  # uvicorn re-raises SIGINT
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
