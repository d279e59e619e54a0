"""The Python client (clients/python) against a real `persona serve` on a generated shop: every
route it wraps, the server's errors as exceptions, retries on 429, and an offline pip install
into a virtual environment. Run by CTest with Debian's python3:

    python3 tests/clients/python_client_test.py PERSONA_BINARY
"""
import json
import sys

sys.dont_write_bytecode = True  # tests leave nothing in the source tree (no __pycache__ beside the client)
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
from persona_client import AuthError, BadRequest, Client, NotFound, PersonaError, RateLimited, Unavailable  # noqa: E402

PERSONA = None
SHOP = None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*args):
    out = subprocess.run([PERSONA, *args], capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"persona {' '.join(args)}: {out.stderr}")
    return out.stdout


class Shop:
    """A small generated shop with a recommender, profiles and keys for every role."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="persona-client-")
        self.config = os.path.join(self.dir, "shop.toml")
        self.models = os.path.join(self.dir, "models")
        self.keys_file = os.path.join(self.dir, "api-keys.json")
        run("generate", "--size", "small", "--out", self.dir, "-q")
        run("ingest", "--config", self.config, "-q")
        run("train", "recommend", "--config", self.config, "--models", self.models, "--method", "item-knn", "-q")
        run("train", "recommend", "--config", self.config, "--models", self.models, "--method", "popularity", "--out",
            os.path.join(self.models, "popularity.model"), "-q")
        run("profile", "build", "--config", self.config, "--models", self.models, "-q")
        self.keys = {}
        for role in ("admin", "analyst", "service"):
            out = run("keys", "create", "--name", role, "--role", role, "--api-keys", self.keys_file, "--json")
            self.keys[role] = json.loads(out)["secret"]
        self.servers = []

    def serve(self, *extra):
        port = free_port()
        proc = subprocess.Popen([PERSONA, "serve", "--config", self.config, "--models", self.models, "--api-keys",
                                 self.keys_file, "--port", str(port), "--web", "none", "--access-log", "", "-q", *extra],
                                stderr=subprocess.DEVNULL)
        self.servers.append(proc)
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1)
                return url
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError("persona serve ended before answering")
                time.sleep(0.1)
        raise RuntimeError("persona serve did not answer in 60 s")

    def close(self):
        for proc in self.servers:
            proc.terminate()
            proc.wait(timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


def setUpModule():
    global SHOP
    SHOP = Shop()
    SHOP.url = SHOP.serve("--rate", "0")


def tearDownModule():
    SHOP.close()


class EveryRoute(unittest.TestCase):
    def client(self, role="admin", **options):
        return Client(SHOP.url, SHOP.keys[role], **options)

    def test_reading(self):
        c = self.client()
        self.assertEqual(c.health()["status"], "ok")
        self.assertTrue(c.ready())
        self.assertGreater(c.stats()["events"], 1000)
        self.assertIn("recommend", c.models())
        profile = c.profile("U000001")
        self.assertIn("rfm", profile)
        self.assertGreater(len(c.user_events("U000001", limit=5)["events"]), 0)
        self.assertGreater(len(c.segments()["segments"]), 0)
        self.assertGreater(len(c.rfm()["rfm_segments"]), 0)
        self.assertGreater(len(c.segment_users(0, limit=3)["users"]), 0)
        recs = c.recommendations("U000001", k=5)
        self.assertEqual(len(recs["recommendations"]), 5)
        self.assertEqual(len(recs["request_id"]), 16)
        cheap = c.recommendations("U000001", k=5, max_price=20, exclude_bought=True)
        self.assertTrue(all(r["item"] for r in cheap["recommendations"]))
        batch = c.recommendations_batch(["U000001", "U000002", "U000003"], k=3)
        self.assertEqual(sorted(batch), ["U000001", "U000002", "U000003"])
        self.assertGreater(len(c.similar(recs["recommendations"][0]["item"], k=3)["similar"]), 0)
        self.assertEqual(c.analyze("物流太慢了，很失望")["language"], "zh")
        reply = c.chat("where is my last order?", user="U000001")
        followed = c.chat("I want a human", user="U000001", session=reply["session"])
        self.assertTrue(followed["handoff"])

    def test_ingest_returns_every_bad_record_with_its_index(self):
        c = self.client("service")
        records = [{"user": "UPY1", "item": "P00001", "type": "purchase", "timestamp": "2025-12-01T10:00:00Z"},
                   {"user": "UPY1", "item": "P00002", "type": "teleport", "timestamp": "2025-12-01T10:00:00Z"},
                   {"user": "UPY2", "item": "P00003", "type": "view", "timestamp": 1764590400 + 7}]
        result = c.ingest_events(records, batch_size=2)
        self.assertEqual((result.records, result.accepted, result.rejected), (3, 2, 1))
        self.assertEqual(len(result.batches), 2)
        self.assertEqual(result.errors[0]["index"], 1)
        self.assertEqual(result.errors[0]["value"], "teleport")
        # A batch of nothing usable is answered 422 by the server: still a result, not an exception.
        result = c.ingest("events", [{"user": "UPY3"}])
        self.assertEqual((result.accepted, result.rejected), (0, 1))
        self.assertEqual(c.ingest_users([{"id": "UPY9", "region": "Shanghai"}]).accepted, 1)
        self.assertEqual(c.ingest_items([{"id": "PPY1", "title": "Tea", "category": "Grocery > Tea", "price": 9}]).accepted, 1)
        self.assertEqual(c.ingest_texts([{"user": "UPY9", "kind": "review", "body": "great tea"}]).accepted, 1)
        with self.assertRaises(ValueError):
            c.ingest("orders", [])

    def test_dp_erasure_experiments_and_feedback(self):
        analyst, admin, service = self.client("analyst"), self.client("admin"), self.client("service")
        count = analyst.dp("count", 0.2)
        self.assertIn("result", count)
        with self.assertRaises(BadRequest) as bad:
            analyst.dp("median", 0.2)
        self.assertIn("unknown statistic", bad.exception.detail)

        created = admin.create_experiment("py", {"a": "popularity.model", "b": "current"}, split="50/50")
        self.assertEqual(created["status"], "running")
        listed = analyst.experiments()
        self.assertIn("py", listed["running"])
        recs = service.recommendations("U000004", k=3)
        self.assertEqual(recs["experiment"], "py")
        stored = service.feedback([{"request_id": recs["request_id"], "user": "U000004", "item": r["item"],
                                    "kind": "impression", "position": i} for i, r in enumerate(recs["recommendations"])])
        self.assertEqual(stored["stored"], 3)
        report = analyst.experiment_report("py")
        self.assertEqual(sum(v["impressions"] for v in report["variants"]), 3)
        self.assertIn("dp", analyst.experiment_report("py", epsilon=0.1))
        self.assertEqual(admin.promote_variant("py", "b")["promoted"], "b")
        with self.assertRaises(BadRequest):
            admin.stop_experiment("py")

        erased = admin.erase("U000010")
        self.assertTrue(erased["found"])
        if erased.get("status") == "retraining":
            for _ in range(600):
                status = admin.erasure(erased["id"])
                if status["status"] != "retraining":
                    break
                time.sleep(0.1)
            self.assertTrue(status["status"].startswith("complete"), status)
        with self.assertRaises(NotFound):
            admin.erase("U000010")
        self.assertEqual(admin.retrain()["status"], "started")

    def test_errors_are_exceptions_with_the_servers_detail(self):
        with self.assertRaises(AuthError) as no_key:
            Client(SHOP.url).stats()
        self.assertEqual(no_key.exception.status, 401)
        self.assertIn("API key", no_key.exception.detail)
        with self.assertRaises(AuthError) as forbidden:
            self.client("service").stats()
        self.assertEqual(forbidden.exception.status, 403)
        with self.assertRaises(BadRequest) as bad:
            self.client().recommendations("U000001", k=5000)
        self.assertIn("1000", bad.exception.detail)
        with self.assertRaises(NotFound):
            self.client().experiment_report("nothing")
        with self.assertRaises(PersonaError) as gone:
            Client(f"http://127.0.0.1:{free_port()}", retries=1, backoff=0.01).health()
        self.assertEqual(gone.exception.status, 0)

    def test_a_rate_limited_client_waits_and_retries(self):
        url = SHOP.serve("--rate", "2", "--burst", "2")
        patient = Client(url, SHOP.keys["analyst"], retries=6)
        for _ in range(6):
            self.assertGreater(patient.stats()["events"], 0)
        self.assertGreater(patient.retried, 0, "the server's 429s were waited out")
        hasty = Client(url, SHOP.keys["analyst"], retries=0)
        with self.assertRaises(RateLimited) as limited:
            for _ in range(10):
                hasty.stats()
        self.assertEqual(limited.exception.status, 429)
        self.assertIn("rate limit", limited.exception.detail)

    def test_an_unavailable_answer_is_retried_then_raised(self):
        # A server with no recommender answers recommendations 503: retried, then raised with its reason.
        empty = tempfile.mkdtemp(prefix="persona-client-models-")
        try:
            port = free_port()
            proc = subprocess.Popen([PERSONA, "serve", "--config", SHOP.config, "--models", empty, "--no-auth", "--rate", "0",
                                     "--port", str(port), "--web", "none", "--access-log", "", "-q"],
                                    stderr=subprocess.DEVNULL)
            SHOP.servers.append(proc)
            c = Client(f"http://127.0.0.1:{port}", retries=2, backoff=0.01)
            for _ in range(600):
                if c.ready():
                    break
                time.sleep(0.1)
            c.retried = 0  # /readyz may have been retried while the server started
            with self.assertRaises(Unavailable) as unavailable:
                c.recommendations("U000001")
            self.assertEqual(c.retried, 2)
            self.assertIn("no recommender", unavailable.exception.detail)
        finally:
            shutil.rmtree(empty, ignore_errors=True)

    def test_frames_when_pandas_is_installed(self):
        try:
            import pandas  # noqa: F401
        except ImportError:
            self.skipTest("pandas is not installed (python3-pandas)")
        from persona_client import frames
        c = self.client()
        recs = frames.recommendations_frame(c, ["U000001", "U000002"], k=4)
        self.assertEqual(len(recs), 8)
        self.assertEqual(list(recs["rank"][:4]), [0, 1, 2, 3])
        profiles = frames.profiles_frame(c, ["U000001", "U000002", "NOBODY"])
        self.assertEqual(len(profiles), 2)
        self.assertIn("rfm.recency_days", profiles.columns)
        self.assertGreater(len(frames.segment_users_frame(c, 0, limit=5)), 0)

    def test_pip_installs_it_offline_into_a_virtual_environment(self):
        work = tempfile.mkdtemp(prefix="persona-client-venv-")
        try:
            # From a copy: a build writes build/ and *.egg-info beside the sources, and tests write
            # only under temporary directories.
            source = os.path.join(work, "python")
            shutil.copytree(os.path.join(ROOT, "clients", "python"), source)
            env_dir = os.path.join(work, "venv")
            subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", env_dir], check=True, capture_output=True)
            python = os.path.join(env_dir, "bin", "python")
            # --no-build-isolation: the build uses the environment's setuptools, nothing is downloaded.
            out = subprocess.run([python, "-m", "pip", "install", "--no-index", "--no-build-isolation", "--no-deps", source],
                                 capture_output=True, text=True)
            self.assertEqual(out.returncode, 0, out.stderr)
            probe = subprocess.run([python, "-c", "import persona_client, json; "
                                    f"print(json.dumps(persona_client.Client({SHOP.url!r}).health()))"],
                                   capture_output=True, text=True, cwd=work)
            self.assertEqual(probe.returncode, 0, probe.stderr)
            self.assertEqual(json.loads(probe.stdout)["status"], "ok")
        finally:
            shutil.rmtree(work, ignore_errors=True)

if __name__ == "__main__":
    PERSONA = sys.argv.pop(1)
    unittest.main(verbosity=2)
