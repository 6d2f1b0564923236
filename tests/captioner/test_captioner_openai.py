"""openai captioner against a loopback OpenAI-compatible server."""

from __future__ import annotations

import base64
import io
import socket

import numpy as np
import pytest
from PIL import Image

from ipo_vlm.captioner import create_captioner
from ipo_vlm.captioner.descriptions import describe_samples
from ipo_vlm.errors import BackendError, ConfigError
from ipo_vlm.llm.retry import RetryPolicy
from helpers.llm_server import FakeOpenAIServer, Reply
from test_captioner_fakes import MemoryDataset

FAST = RetryPolicy(max_retries=2, base_delay_s=0.01, max_delay_s=0.05, jitter=0.0)


def _image(seed: int = 0, size: tuple[int, int] = (24, 16)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")


def _parts(request):
    (message,) = request.body["messages"]
    text = [p for p in message["content"] if p["type"] == "text"]
    image = [p for p in message["content"] if p["type"] == "image_url"]
    return text, image


def _decode(url: str) -> Image.Image:
    header, _, data = url.partition(",")
    assert header == "data:image/png;base64"
    return Image.open(io.BytesIO(base64.b64decode(data)))


@pytest.fixture
def server(monkeypatch):
    with FakeOpenAIServer() as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-1234")
        yield srv


def test_image_payload_round_trips_and_texts_come_back_in_order(server):
    server.push(Reply.ok("A striped shirt."), Reply.ok("A dark coat."))
    cap = create_captioner("openai:minicpm-v", vlm=object(), retry=FAST, concurrency=1)
    images = [_image(0), _image(1)]
    assert cap.describe(images, "Describe the clothing item.") == ["A striped shirt.", "A dark coat."]
    requests = server.chat_requests()
    assert len(requests) == 2
    for request, image in zip(requests, images):
        text, (part,) = _parts(request)
        assert text == [{"type": "text", "text": "Describe the clothing item."}]
        sent = _decode(part["image_url"]["url"])
        assert np.array_equal(np.asarray(sent.convert("RGB")), np.asarray(image))
        assert request.body["model"] == "minicpm-v"
        assert request.body["temperature"] == 0.0


def test_large_images_are_shrunk_and_options_ride_on_the_spec(server):
    cap = create_captioner("openai:gpt-4o-mini?max_side=32&detail=low&max_tokens=50", retry=FAST)
    cap.describe([_image(0, (200, 100))], "x")
    (request,) = server.chat_requests()
    _, (part,) = _parts(request)
    assert _decode(part["image_url"]["url"]).size == (32, 16)
    assert part["image_url"]["detail"] == "low"
    assert request.body["max_tokens"] == 50
    assert "max_side=32" in cap.model_id and "detail=low" in cap.model_id


def test_retries_on_500_and_429_then_succeeds(server):
    server.push(Reply.error(500), Reply.error(429, retry_after=0.01), Reply.ok("fine"))
    cap = create_captioner("openai:m", retry=FAST)
    assert cap.describe([_image()], "x") == ["fine"]
    assert len(server.chat_requests()) == 3


def test_retries_are_bounded(server):
    server.push(*[Reply.error(503, message="overloaded")] * 5)
    cap = create_captioner("openai:m", retry=FAST)
    with pytest.raises(BackendError, match="HTTP 503: overloaded"):
        cap.describe([_image()], "x")
    assert len(server.chat_requests()) == 3  # first try + max_retries


def test_client_errors_fail_at_once_without_the_key(server):
    server.push(Reply.error(400, message="bad image for key sk-test-secret-1234"))
    cap = create_captioner("openai:m", retry=FAST)
    with pytest.raises(BackendError) as info:
        cap.describe([_image()], "x")
    assert "sk-test-secret-1234" not in str(info.value) and "***" in str(info.value)
    assert "\n" not in str(info.value)
    assert len(server.chat_requests()) == 1
    assert "secret" not in cap.model_id


def test_empty_answer_is_retried(server):
    server.push(Reply.ok("   "), Reply.ok("something"))
    assert create_captioner("openai:m", retry=FAST).describe([_image()], "x") == ["something"]


def test_missing_key_for_api_openai_com(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(BackendError, match="OPENAI_API_KEY is not set"):
        create_captioner("openai:gpt-4o-mini")


def test_server_down_is_a_backend_error(monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    cap = create_captioner("openai:m", retry=FAST, timeout=2)
    with pytest.raises(BackendError, match="cannot reach http://127.0.0.1"):
        cap.describe([_image()], "x")


@pytest.mark.parametrize("spec, message", [
    ("openai:", "needs a model name"),
    ("openai:m?colour=red", "unknown openai captioner option"),
    ("openai:m?max_side=big", "bad value"),
    ("openai:m?image_format=gif", "unknown image_format"),
])
def test_bad_specs(server, spec, message):
    with pytest.raises(ConfigError, match=message):
        create_captioner(spec)


def test_describe_samples_end_to_end_masks_and_caches(server, tmp_path):
    server.default = Reply.ok("A t-shirt with stripes, unlike other T shirts.")
    dataset = MemoryDataset([_image(0), _image(1)], [0, 1], ["T-shirt/top", "coat"], domain="clothing item")
    cap = create_captioner("openai:m", retry=FAST)
    descs = describe_samples(cap, dataset, dataset.samples, "Describe.", dataset.info.classnames, cache_root=tmp_path)
    assert [d.text for d in descs.items] == ["A clothing item with stripes, unlike other clothing items."] * 2
    assert descs.maskings == 4
    again = describe_samples(cap, dataset, dataset.samples, "Describe.", dataset.info.classnames, cache_root=tmp_path)
    assert again.hits == 2 and len(server.chat_requests()) == 2


def test_model_id_never_holds_credentials_from_the_base_url(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://user:hunter2@127.0.0.1:9/v1?token=abc")
    cap = create_captioner("openai:m")
    assert "hunter2" not in cap.model_id and "abc" not in cap.model_id
    assert "@http://127.0.0.1:9/v1" in cap.model_id


def test_jpeg_payload(server):
    cap = create_captioner("openai:m?image_format=jpeg", retry=FAST)
    cap.describe([_image()], "x")
    _, (part,) = _parts(server.chat_requests()[0])
    header, _, data = part["image_url"]["url"].partition(",")
    assert header == "data:image/jpeg;base64"
    assert Image.open(io.BytesIO(base64.b64decode(data))).format == "JPEG"
