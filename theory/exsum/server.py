"""A local browser GUI for an ExSum rule set (standard-library HTTP server, no Flask).

``serve(rules_file)`` loads a rule file (JSON/TOML saved by :meth:`ExplanationSummary.save`, naming
its FEU data) and serves one page like the official tool's: the rule formula, rule selection, the
metric table (union, selected rule, counterfactual), parameter sliders with AutoTune and the joint
optimiser, and example instances with each FEU coloured by its explanation and marked by
applicability and validity. The page talks JSON to the endpoints below; every parameter change
recomputes the metrics (vectorised, milliseconds for thousands of FEUs).

==========================  =====================================================================
``GET  /``                  the page
``GET  /api/state``         formula, rules and parameters, metrics (``?rule=NAME`` selects a rule)
``GET  /api/examples``      ``?rule=&count=&offset=``: instances with per-FEU status
``POST /api/param``         ``{"rule", "param", "value", "selected"}``: set a value, new metrics
``POST /api/autotune``      :func:`autotune` arguments plus ``"selected"``
``POST /api/optimise``      ``{"rule", "min_validity", "min_coverage"}``
``POST /api/reset``         all parameters back to their defaults
==========================  =====================================================================

Bad requests (unknown rule, value out of range, ...) answer 400 with ``{"error": message}``.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np

from sciprob.theory.exsum.metrics import ExplanationSummary
from sciprob.theory.exsum.page import PAGE
from sciprob.theory.exsum.tuning import autotune, optimise_rule

__all__ = ["ExSumServer", "make_server", "serve"]


def _clean(x: Any) -> Any:
    """JSON-safe copy: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


class _App:
    """The GUI's state and actions (thread-safe)."""

    def __init__(self, summary: ExplanationSummary, seed: int = 0) -> None:
        self.summary = summary
        self.lock = threading.Lock()
        self.order = np.random.default_rng(seed).permutation(np.unique(summary.data.instance))

    def _selected(self, name: Any) -> str | None:
        if name in (None, "", "union"):
            return None
        self.summary.rules.rule(str(name))  # raises ValueError for unknown rules
        return str(name)

    def metrics(self, selected: str | None) -> dict[str, Any]:
        return self.summary.metrics(selected).to_dict()

    def state(self, selected: Any = None) -> dict[str, Any]:
        with self.lock:
            sel = self._selected(selected)
            rules = []
            for r in self.summary.rules.rules:
                params = [
                    {
                        "name": p.name,
                        "lo": p.lo,
                        "hi": p.hi,
                        "value": p.value,
                        "default": p.default,
                        "kind": kind,
                    }
                    for kind, ps in (("a", r.a_params), ("b", r.b_params))
                    for p in ps
                ]
                rules.append({"name": r.name, "description": r.description, "params": params})
            return {
                "formula": self.summary.rules.formula,
                "rules": rules,
                "selected": sel,
                "metrics": self.metrics(sel),
                "n_feus": self.summary.data.n,
                "n_instances": self.summary.data.n_instances,
            }

    def examples(self, selected: Any, count: int, offset: int) -> dict[str, Any]:
        with self.lock:
            sel = self._selected(selected)
            st = self.summary.feu_status(sel)
            d = self.summary.data
            scale = float(np.abs(d.explanation).max()) or 1.0
            out = []
            for i in self.order:
                idx = d.instance_indices(int(i))
                if not st["applicable"][idx].any():
                    continue
                if offset > 0:
                    offset -= 1
                    continue
                units = [
                    {
                        "name": d.units[j],
                        "e": float(d.explanation[j]),
                        "c": float(d.explanation[j]) / scale,
                        "applicable": bool(st["applicable"][j]),
                        "valid": bool(st["valid"][j]),
                        "rule": self.summary.rules.names[st["rule"][j]] if st["rule"][j] >= 0 else None,
                    }
                    for j in idx
                ]
                out.append(
                    {
                        "instance": int(i),
                        "label": d.label[idx[0]],
                        "prediction": d.prediction[idx[0]],
                        "units": units,
                    }
                )
                if len(out) >= count:
                    break
            return {"selected": sel, "instances": out}

    def set_param(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            sel = self._selected(body.get("selected"))
            self.summary.set_parameter(str(body["rule"]), str(body["param"]), float(body["value"]))
            return {"metrics": self.metrics(sel), "params": self.summary.parameters()}

    def autotune(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            sel = self._selected(body.get("selected"))
            res = autotune(
                self.summary,
                str(body["rule"]),
                str(body["param"]),
                float(body["start"]),
                float(body["stop"]),
                float(body["precision"]),
                float(body["minimum"]),
                metric=body.get("metric", "validity"),
                scope=body.get("scope", "selected"),
                method=body.get("method", "linear"),
            )
            return {
                "found": res.found,
                "value": res.value,
                "message": res.message,
                "metrics": self.metrics(sel),
                "params": self.summary.parameters(),
            }

    def optimise(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            rule = str(body["rule"])
            res = optimise_rule(
                self.summary,
                rule,
                min_validity=float(body.get("min_validity", 0.9)),
                min_coverage=float(body.get("min_coverage", 0.05)),
                seed=0,
            )
            msg = "Optimiser found a feasible point." if res.feasible else "No feasible point found."
            return {
                "found": res.feasible,
                "message": msg,
                "metrics": self.metrics(rule),
                "params": self.summary.parameters(),
            }

    def reset(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.summary.reset()
            sel = self._selected(body.get("selected"))
            return {"metrics": self.metrics(sel), "params": self.summary.parameters()}


def _handler(app: _App, page: bytes) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt: str, *args: Any) -> None:  # keep the terminal quiet
            pass

        def _send(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, code: int, obj: Any) -> None:
            self._send(code, json.dumps(_clean(obj), allow_nan=False).encode(), "application/json")

        def _run(self, fn: Any, *args: Any) -> None:
            try:
                self._json(200, fn(*args))
            except (ValueError, TypeError, KeyError) as exc:
                msg = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
                self._json(400, {"error": msg})

        def do_GET(self) -> None:  # noqa: N802 - http.server API
            url = urlparse(self.path)
            q = {k: v[-1] for k, v in parse_qs(url.query).items()}
            if url.path in ("/", "/index.html"):
                self._send(200, page, "text/html; charset=utf-8")
            elif url.path == "/api/state":
                self._run(app.state, q.get("rule"))
            elif url.path == "/api/examples":
                self._run(
                    lambda: app.examples(q.get("rule"), int(q.get("count", 6)), int(q.get("offset", 0)))
                )
            else:
                self._json(404, {"error": f"no page {url.path}"})

        def do_POST(self) -> None:  # noqa: N802 - http.server API
            url = urlparse(self.path)
            routes = {"/api/param": app.set_param, "/api/autotune": app.autotune,
                      "/api/optimise": app.optimise, "/api/reset": app.reset}  # fmt: skip
            if url.path not in routes:
                self._json(404, {"error": f"no endpoint {url.path}"})
                return
            try:
                n = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(n) or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("request body must be a JSON object")
            except (ValueError, json.JSONDecodeError) as exc:
                self._json(400, {"error": f"bad JSON: {exc}"})
                return
            self._run(routes[url.path], body)

    return Handler


@dataclass
class ExSumServer:
    """A running GUI server (in a background thread).

    Attributes
    ----------
    url : str
        ``http://host:port/``.
    summary : ExplanationSummary
        The state the page edits.
    """

    url: str
    summary: ExplanationSummary
    _httpd: ThreadingHTTPServer
    _thread: threading.Thread

    def shutdown(self) -> None:
        """Stop serving and close the socket."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ExSumServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def _summary_of(rules: ExplanationSummary | str | Path) -> ExplanationSummary:
    if isinstance(rules, ExplanationSummary):
        return rules
    if isinstance(rules, (str, Path)):
        return ExplanationSummary.load(rules)
    raise TypeError(
        f"`rules` must be an ExplanationSummary or a rule file path, got {type(rules).__name__}; "
        "save one with ExplanationSummary.save(path, data_file=...)."
    )


def make_server(
    rules: ExplanationSummary | str | Path, port: int = 0, host: str = "127.0.0.1"
) -> ExSumServer:
    """Start the GUI in a background thread and return at once.

    Parameters
    ----------
    rules : ExplanationSummary or str or Path
        A summary, or a rule file naming its FEU data.
    port : int, default=0
        TCP port; 0 picks a free one (see ``.url``).
    host : str, default="127.0.0.1"
        Interface to bind (keep the default: the GUI has no authentication).

    Returns
    -------
    ExSumServer
        Call ``.shutdown()`` when done (or use it as a context manager).
    """
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"`port` must be an integer in [0, 65535], got {port!r}.")
    summary = _summary_of(rules)
    page = PAGE.encode()
    httpd = ThreadingHTTPServer((host, port), _handler(_App(summary), page))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, name="exsum-gui", daemon=True)
    thread.start()
    h, p = httpd.server_address[:2]
    return ExSumServer(f"http://{h}:{p}/", summary, httpd, thread)


def serve(rules_file: str | Path, port: int = 8000, host: str = "127.0.0.1") -> None:
    """Serve the GUI for ``rules_file`` until interrupted (``sciprob exsum serve RULES_FILE --port``).

    Parameters
    ----------
    rules_file : str or Path
        JSON or TOML rule file saved with its FEU data (``ExplanationSummary.save(path, data_file=...)``).
    port : int, default=8000
        TCP port.
    host : str, default="127.0.0.1"
        Interface to bind.
    """
    server = make_server(rules_file, port=port, host=host)
    print(f"ExSum GUI for {rules_file} at {server.url} (Ctrl-C stops)", flush=True)
    try:
        server._thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
