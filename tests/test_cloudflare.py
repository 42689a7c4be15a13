"""The Workers AI client against scripted faults (pytest-httpserver) and against `sst2bench serve`."""

import json
import shutil
import subprocess
import threading
import time

import pytest
from werkzeug import Response

from sst2bench.cloudflare.cache import ReplyCache
from sst2bench.cloudflare.client import AuthError, ClientConfig, DailyLimitReached, RequestFailed, WorkersAIClient
from sst2bench.cloudflare.credentials import Credentials
from sst2bench.cloudflare.serve import make_server
from sst2bench.cloudflare.system import CloudflareSystem, estimate_cost, prediction_from

MODEL = "@cf/huggingface/distilbert-sst-2-int8"
TOKEN = "test-token-5f2c9a"
ACCOUNT = "acct123"
PATH = f"/client/v4/accounts/{ACCOUNT}/ai/run/{MODEL}"
OK = {"result": [{"label": "NEGATIVE", "score": 0.2}, {"label": "POSITIVE", "score": 0.8}], "success": True, "errors": [], "messages": []}


def error(code, status=429, headers=None):
    body = {"result": None, "success": False, "errors": [{"code": code, "message": "x"}], "messages": []}
    return Response(json.dumps(body), status=status, headers=headers or {}, content_type="application/json")


def client_for(httpserver, **overrides):
    settings = {"backoff_s": 0.01, "max_retries": 3, "timeout_s": 2.0, **overrides}
    config = ClientConfig(base_url=httpserver.url_for("/client/v4"), **settings)
    return WorkersAIClient(Credentials(ACCOUNT, TOKEN), config)


def scripted(httpserver, replies):
    """Serve ``replies`` (Responses, dicts or callables) in order; count every request."""
    seen = []

    def handler(request):
        seen.append(json.loads(request.data or b"null"))
        reply = replies[min(len(seen), len(replies)) - 1]
        if callable(reply) and not isinstance(reply, Response):
            reply = reply(request)
        return Response(json.dumps(reply), content_type="application/json") if isinstance(reply, dict) else reply

    httpserver.expect_request(PATH, method="POST").respond_with_handler(handler)
    return seen


def test_highest_score_wins_in_either_shape_and_order():
    assert prediction_from([{"label": "POSITIVE", "score": 0.1}, {"label": "NEGATIVE", "score": 0.9}]).label == 0
    assert prediction_from({"items": [{"label": "NEGATIVE", "score": 0.3}, {"label": "POSITIVE", "score": 0.7}]}).label == 1
    with pytest.raises(ValueError):
        prediction_from([{"label": "NEUTRAL", "score": 1.0}])


def test_bearer_token_and_body_are_what_cloudflare_documents(httpserver):
    seen = scripted(httpserver, [OK])
    reply = client_for(httpserver).classify("good film")
    assert seen == [{"text": "good film"}] and reply.retries == 0 and reply.latency_ms > 0
    request, _ = httpserver.log[0]
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize("code", [3021, 3040])
def test_rate_limit_and_capacity_are_retried_honouring_retry_after(httpserver, code):
    seen = scripted(httpserver, [error(code, headers={"Retry-After": "0.3"}), OK])
    started = time.monotonic()
    reply = client_for(httpserver).classify("good")
    assert reply.retries == 1 and len(seen) == 2
    assert time.monotonic() - started >= 0.3


def test_unauthorized_stops_at_once(httpserver):
    seen = scripted(httpserver, [error(10000, status=401)])
    with pytest.raises(AuthError, match="CLOUDFLARE_API_TOKEN"):
        client_for(httpserver).classify("good")
    assert len(seen) == 1


def test_server_errors_retry_a_bounded_number_of_times(httpserver):
    seen = scripted(httpserver, [Response("oops", status=503)])
    with pytest.raises(RequestFailed, match="gave up after 4 attempts: HTTP 503"):
        client_for(httpserver).classify("good")
    assert len(seen) == 4


def test_bad_request_is_not_retried(httpserver):
    seen = scripted(httpserver, [error(5006, status=400)])
    with pytest.raises(RequestFailed, match="not retried"):
        client_for(httpserver).classify("good")
    assert len(seen) == 1


def test_slow_malformed_and_truncated_replies_are_retried(httpserver):
    def slow(request):
        time.sleep(0.6)
        return OK

    seen = scripted(
        httpserver,
        [
            slow,
            Response("not json", content_type="application/json"),
            Response('{"result": [{"label"', content_type="application/json"),
            OK,
        ],
    )
    reply = client_for(httpserver, timeout_s=0.3).classify("good")
    assert reply.retries == 3 and len(seen) == 4


def test_daily_limit_stops_keeps_replies_and_a_rerun_sends_only_the_rest(httpserver, tmp_path):
    texts = [f"sentence {i}" for i in range(8)]
    state = {"allowed": 5}

    def quota(request):
        if state["allowed"] == 0:
            return error(3036)
        state["allowed"] -= 1
        return OK

    seen = scripted(httpserver, [quota])
    cache = ReplyCache(tmp_path / "cache.sqlite", "endpoint", MODEL)
    system = CloudflareSystem(client_for(httpserver, concurrency=1), cache)
    with pytest.raises(DailyLimitReached, match="3036"):
        system.predict(texts)
    assert cache.count() == 5
    state["allowed"] = 100
    rerun = CloudflareSystem(client_for(httpserver, concurrency=3), cache)
    predictions = rerun.predict(texts + texts[:2])
    assert len(predictions) == 10 and cache.count() == 8
    assert rerun.usage.sent == 3 and rerun.usage.cached == 5
    sent_texts = [body["text"] for body in seen]
    assert sorted(set(sent_texts)) == sorted(texts) and len(sent_texts) == 9  # 8 texts + the refused one
    again = CloudflareSystem(client_for(httpserver), cache)
    again.predict(texts)
    assert again.usage.sent == 0 and len(seen) == 9  # a rerun costs nothing


def test_limiter_holds_the_configured_rate(httpserver):
    scripted(httpserver, [OK])
    client = client_for(httpserver, requests_per_minute=600, concurrency=4)
    started = time.monotonic()
    threads = [threading.Thread(target=client.classify, args=(f"t{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - started >= 5 * 0.1 - 0.01  # six starts, at least 0.1 s apart
    assert len(httpserver.log) == 6


def test_cost_estimate_matches_the_published_price_worked_by_hand(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    # Worked by hand from Cloudflare's published numbers, not from the module's constants:
    # "good film ." is [CLS] good film . [SEP] = 5 input tokens; 100,000 requests = 500,000 tokens.
    # $0.026 per million input tokens -> 0.5 * 0.026 = $0.013.
    # $0.011 per 1,000 neurons -> 0.013 / 0.011 * 1000 = 1,181.8 neurons,
    # 1,181.8 / 10,000 free neurons a day = 0.1182 of a day's free allocation.
    cost = estimate_cost(["good film ."] * 100_000, tokenizer)
    assert cost == {
        "requests": 100_000,
        "input_tokens": 500_000,
        "dollars": 0.013,
        "neurons": 1181.8,
        "share_of_daily_free_neurons": 0.1182,
        "estimate": True,
        "price_source": "https://developers.cloudflare.com/workers-ai/platform/pricing/",
        "price_read_on": "2026-11-26",
    }
    assert estimate_cost([], tokenizer)["dollars"] == 0


def test_cost_follows_the_pricing_file(tiny_model_dir, tmp_path, monkeypatch):
    """The price is read from params/published, not typed into code: a changed file changes the estimate."""
    import yaml
    from transformers import AutoTokenizer

    from sst2bench.cloudflare.system import PRICING_FILE
    from sst2bench.paths import CHECKOUT

    price = yaml.safe_load((CHECKOUT / PRICING_FILE).read_text())
    price["dollars_per_million_input_tokens"] *= 2
    price["source"]["read_on"] = "2030-01-01"
    (tmp_path / PRICING_FILE).parent.mkdir(parents=True)
    (tmp_path / PRICING_FILE).write_text(yaml.safe_dump(price))
    monkeypatch.chdir(tmp_path)
    cost = estimate_cost(["good film ."] * 100_000, AutoTokenizer.from_pretrained(tiny_model_dir))
    assert cost["dollars"] == 0.026 and cost["price_read_on"] == "2030-01-01"


def test_credentials_come_from_env_or_dotenv_and_never_print(tmp_path, monkeypatch):
    from sst2bench.errors import MissingPrerequisite

    monkeypatch.delenv("CLOUDFLARE_ACCOUNT_ID", raising=False)
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN", raising=False)
    with pytest.raises(MissingPrerequisite, match="CLOUDFLARE_ACCOUNT_ID and CLOUDFLARE_API_TOKEN not set"):
        Credentials.load(tmp_path / ".env")
    (tmp_path / ".env").write_text(f"CLOUDFLARE_ACCOUNT_ID={ACCOUNT}\nCLOUDFLARE_API_TOKEN={TOKEN}\n")
    credentials = Credentials.load(tmp_path / ".env")
    assert credentials.api_token == TOKEN and TOKEN not in repr(credentials)
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", "from-env")
    assert Credentials.load(tmp_path / ".env").account_id == "from-env"  # the environment wins


@pytest.fixture
def served(tiny_model_dir):
    from sst2bench.systems import load_system

    system = load_system(str(tiny_model_dir))
    server = make_server(system, TOKEN, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield system, f"http://127.0.0.1:{server.server_address[1]}/client/v4"
    server.shutdown()
    server.server_close()


def test_serve_answers_our_client_like_the_local_model(served):
    system, base_url = served
    client = WorkersAIClient(Credentials(ACCOUNT, TOKEN), ClientConfig(base_url=base_url))
    for text in ["good film .", "a dull , boring mess"]:
        remote = prediction_from(client.classify(text).result)
        local = system.predict([text])[0]
        assert remote.label == local.label and remote.probabilities == pytest.approx(local.probabilities)
    wrong = WorkersAIClient(Credentials(ACCOUNT, "wrong"), ClientConfig(base_url=base_url))
    with pytest.raises(AuthError):
        wrong.classify("good")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def curl(base_url: str, body: str, token: str | None = TOKEN) -> dict:
    """Cloudflare's documented curl call against ``base_url``, with or without the bearer token."""
    auth = ["-H", f"Authorization: Bearer {token}"] if token else []
    command = ["curl", "-s", f"{base_url}/accounts/{ACCOUNT}/ai/run/{MODEL}", "-X", "POST", *auth, "-d", body]
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


def test_serve_works_with_cloudflares_curl_example(served):
    _, base_url = served
    body = curl(base_url, '{"text": "good film"}')
    assert body["success"] is True and {r["label"] for r in body["result"]} == {"NEGATIVE", "POSITIVE"}
    assert curl(base_url, '{"text": "x"}', token=None)["errors"][0]["code"] == 10000
    assert curl(base_url, '{"text": ""}')["success"] is False


def test_serve_works_with_the_official_sdk(served):
    from cloudflare import Cloudflare

    system, base_url = served
    sdk = Cloudflare(api_token=TOKEN, base_url=base_url, max_retries=0)
    result = sdk.ai.run(MODEL, account_id=ACCOUNT, text="good film .")
    scores = {
        item["label"] if isinstance(item, dict) else item.label: item["score"] if isinstance(item, dict) else item.score for item in result
    }
    assert scores["POSITIVE"] == pytest.approx(system.predict(["good film ."])[0].probabilities[1])


def test_stage_end_to_end_against_serve_matches_local_accuracy_and_hides_the_token(served, tiny_model_dir, sst2_dir, tmp_path, monkeypatch):
    from sst2bench.config import run_config_from_dict
    from sst2bench.evaluation import score_system
    from sst2bench.stages.common import eval_split, load_data
    from sst2bench.stages.endpoint import stage_endpoint as stage_cloudflare

    system, base_url = served
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SST2_DATA_DIR", str(sst2_dir))
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", ACCOUNT)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("CLOUDFLARE_BASE_URL", base_url)
    cfg = run_config_from_dict({"run": "cf", "model": {"kind": "local", "path": str(tiny_model_dir)}, "data": {"eval_limit": 30}})
    result = stage_cloudflare(cfg, progress=False)
    assert result.status == "done" and result.usage["sent"] == 30
    local = score_system(system, eval_split(cfg, load_data(cfg, splits=("validation",))[0]), tmp_path / "local.jsonl", progress=False)
    assert result.system.correct == local["correct"]
    assert result.cost_estimate["requests"] == 30 and result.collected_from <= result.collected_to
    rerun = stage_cloudflare(cfg, progress=False)
    assert rerun.usage == {"sent": 0, "from_cache": 30, "retries_this_run": 0}
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def test_stage_without_credentials_says_why(tmp_path, monkeypatch, sst2_dir):
    from sst2bench.config import run_config_from_dict
    from sst2bench.stages.endpoint import stage_endpoint as stage_cloudflare

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CLOUDFLARE_ACCOUNT_ID", raising=False)
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN", raising=False)
    result = stage_cloudflare(run_config_from_dict({"run": "cf"}), progress=False)
    assert result.status == "skipped" and "CLOUDFLARE_API_TOKEN not set" in result.reason
