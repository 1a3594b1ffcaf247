"""The served app: /compare through gradio_client, and bad input leaves it serving."""
from __future__ import annotations

import json
import os
import time
import zipfile
from pathlib import Path

import pytest
from app_server import serve


@pytest.fixture(scope="module")
def served_app(tiny_weights, bccd_test_images, tmp_path_factory):
    examples = tmp_path_factory.mktemp("examples")
    for p in bccd_test_images[:2]:
        (examples / p.name).symlink_to(p)
    with serve(tiny_weights, "--examples", str(examples)) as url:
        yield url


def call_compare(client, image, models, uploads=(), conf=0.001):
    from gradio_client import handle_file

    return client.predict(handle_file(str(image)), models, [handle_file(str(u)) for u in uploads], conf, 0.7, 320,
                          "baseline", api_name="/compare")


def test_compare_endpoint_returns_images_and_detections_in_original_pixels(served_app, bccd_test_images):
    from gradio_client import Client
    from PIL import Image

    client = Client(served_app, verbose=False)
    out = call_compare(client, bccd_test_images[0], ["baseline", "ema", "coordatt"])
    gallery, table, detections = out[0], out[1], out[2]
    assert len(gallery) == 3
    w, h = Image.open(bccd_test_images[0]).size
    for item in gallery:
        assert Image.open(item["image"]).size == (w, h)
        assert Image.open(item["image"]).format == "JPEG"  # DISPLAY_FORMAT: fast to encode
    if isinstance(detections, str):
        detections = json.loads(detections)
    assert detections["image_size"] == [h, w]
    rows = detections["detections"]
    assert rows and {r["model"] for r in rows} == {"baseline", "ema", "coordatt"}
    for r in rows:
        x1, y1, x2, y2 = r["box"]
        assert 0 <= x1 <= x2 <= w and 0 <= y1 <= y2 <= h
        assert r["class"] in {"Platelets", "RBC", "WBC"}
    assert [row[0] for row in table["data"]] == ["baseline", "coordatt", "ema"]  # catalogue order, not click order


def test_bad_inputs_get_messages_and_the_app_keeps_serving(served_app, bccd_test_images, tmp_path):
    from gradio_client import Client

    client = Client(served_app, verbose=False)
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"definitely not a jpeg")
    evil = tmp_path / "evil.pt"
    import torch

    class Boom:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    torch.save({"model": Boom()}, evil)
    for image, models, uploads, pattern in ((junk, ["baseline", "ema"], (), "not an image"),
                                            (bccd_test_images[0], ["baseline"], (), "at least 2"),
                                            (bccd_test_images[0], ["baseline"], (evil,), "refused")):
        with pytest.raises(Exception, match=pattern):
            call_compare(client, image, models, uploads)
    assert not (tmp_path / "pwned").exists()
    out = call_compare(client, bccd_test_images[1], ["baseline", "ema"])
    assert len(out[0]) == 2


def test_attention_endpoint_lists_layers_and_serves_maps(served_app, bccd_test_images):
    from gradio_client import Client, handle_file

    client = Client(served_app, verbose=False)
    notice, table, matrix, summary = client.predict(
        handle_file(str(bccd_test_images[0])), ["baseline", "ema"], "jet", 0.5, 0.25, 320, api_name="/attention")
    # The download files are the chained step's, from this session's stored inspection.
    downloads = client.predict("jet", 0.5, api_name="/attention_downloads")
    assert "baseline" in notice and "No attention layers" in notice
    if isinstance(summary, str):
        summary = json.loads(summary)
    assert [lm["layer"] for lm in summary["ema"]] == [16, 20, 24]
    first = summary["ema"][0]  # P3 on a 640x480 image at 320: a 256x320 input, stride 8
    assert first["stride"] == 8 and first["maps"]["spatial_groups"]["shape"][1:] == [32, 40]
    assert {Path(d).suffix for d in downloads} == {".zip", ".npz"}
    zipped = next(d for d in downloads if d.endswith(".zip"))
    assert len(zipfile.ZipFile(zipped).namelist()) >= 6  # every map as a PNG
    matrix = matrix if isinstance(matrix, dict) else json.loads(matrix)
    figure = json.loads(matrix["plot"]) if isinstance(matrix["plot"], str) else matrix["plot"]
    heat = [t for t in figure["data"] if t["type"] == "heatmap"]
    assert matrix["type"] == "plotly" and len(heat) == 3 + 3  # ema's 3 gates, the baseline's 3 LayerCAM levels
    assert {t["hovertemplate"].split("</extra>")[0].rsplit(">", 1)[1] for t in heat} == {"baseline", "ema"}
    assert [row[0] for row in table["data"]].count("ema") == 3


def test_metrics_endpoint_returns_the_table(served_app, tiny_weights):
    from gradio_client import Client

    client = Client(served_app, verbose=False)
    out = client.predict(False, None, [], "metrics/mAP50-95(B)", api_name="/metrics")
    table = out[0]
    models = [row[0] for row in table["data"]]
    assert len(models) == 3 and any("baseline" in m for m in models)
    headers = table["headers"]
    assert "test mAP50-95" in headers and "flag" in headers and "GFLOPs (torch)" in headers
    summary = json.loads((tiny_weights / "baseline" / "summary.json").read_text())
    row = next(r for r in table["data"] if "baseline" in r[0])
    assert row[headers.index("test mAP50")] == f"{summary['metrics']['test']['mAP50']:.3f}"


def test_model_forwards_queue_one_at_a_time_and_light_events_do_not_wait(tiny_weights):
    from app import create_app

    demo, _ = create_app(str(tiny_weights), [])
    by_fn = {}
    for fn in demo.fns.values():
        if fn.fn is None:  # a stop button's event: it only cancels, it runs nothing
            continue
        by_fn.setdefault(fn.fn.__name__, set()).add((fn.concurrency_id, fn.concurrency_limit))
    for heavy in ("compare", "compare_again", "attention", "explain"):
        assert by_fn[heavy] == {("inference", 1)}, heavy
    # An evaluation waits for its job (a child process) in a queue of its own, never in the views'.
    from attention_lens.app.evaluate_lane import JOB_WAITERS

    assert by_fn["evaluate_request"] == {("jobs", JOB_WAITERS)}
    for light in ("rerender_attention", "slider_pair", "metrics_page", "attention_matrix", "results_grid",
                  "detections_table", "reference_picker", "pick_detection", "filtered_views", "review_image",
                  "query_point", "charts_for_picks"):
        assert all(cid != "inference" for cid, _ in by_fn[light]), light


def raw_call(url: str, api: str, data: list) -> str:
    """One call through gradio's HTTP API with a hand-written payload (what a prober sends)."""
    import urllib.request

    req = urllib.request.Request(f"{url}/gradio_api/call/{api}", data=json.dumps({"data": data}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        event = json.loads(r.read())["event_id"]
    with urllib.request.urlopen(f"{url}/gradio_api/call/{api}/{event}", timeout=120) as r:
        return r.read().decode()


def test_a_path_that_is_not_an_upload_is_refused_the_same_way_whether_it_exists(served_app, tiny_weights):
    from attention_lens.app.inputs import NOT_AN_UPLOAD

    weights = str(next(tiny_weights.rglob("*.pt")))
    paths = ("/etc/hostname", "/no/such/file.png", weights, "/tmp/gradio/../../etc/hostname")
    # gradio refuses payloads tagged as its FileData itself; untagged ones reach the handler
    for tagged in (True, False):
        answers = set()
        for path in paths:
            image = {"path": path, **({"meta": {"_type": "gradio.FileData"}} if tagged else {})}
            answer = raw_call(served_app, "compare", [image, ["baseline", "ema"], [], 0.25, 0.7, 320, None])
            assert "event: error" in answer and "event: complete" not in answer
            assert tagged or NOT_AN_UPLOAD in answer
            answers.add(answer.replace(path, "PATH").replace(os.path.normpath(path), "PATH"))
        assert len(answers) == 1  # existence is not told
    # a checkpoint "upload" naming a server file: gradio's validation or ours refuses it, never a load
    answer = raw_call(served_app, "compare", [{"path": "/etc/hostname"}, ["baseline"], [{"path": weights}], 0.25,
                                              0.7, 320, None])
    assert "event: error" in answer and "event: complete" not in answer
    for payload in ({"path": "/etc/passwd"}, {"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}):
        answer = raw_call(served_app, "metrics", [False, payload, [], None])
        assert "event: error" in answer and "root:" not in answer


def test_a_script_asks_where_a_point_looks_after_an_attention_call(served_app, bccd_test_images, tmp_path):
    """/attention with an uploaded yolo11n (ultralytics-written, C2PSA), then /attention_query at a
    point: the point comes back as given and the note counts its one self-attention layer."""
    from gradio_client import Client, handle_file
    from ultralytics_checkpoints import ultralytics_checkpoint

    client = Client(served_app, verbose=False)
    yolo11 = ultralytics_checkpoint(tmp_path, "yolo11n.yaml", nc=3)
    client.predict(handle_file(str(bccd_test_images[0])), ["baseline"], "jet", 0.5, 0.25, 320,
                   [handle_file(str(yolo11))], api_name="/attention")
    image, figure, note, x, y = client.predict(100, 80, api_name="/attention_query")
    assert (x, y) == (100, 80) and "Query at (100, 80) px" in note and "in 1 self-attention layer(s)" in note
    assert Path(image).is_file() and Path(figure).is_file()
    with pytest.raises(Exception, match="outside the image"):
        client.predict(100_000, 80, api_name="/attention_query")


def test_the_api_reads_like_documented_functions(tiny_weights):
    """What gradio_client's view_api shows: named parameters, defaults for all but the image, named outputs."""
    from app import create_app

    demo, _ = create_app(str(tiny_weights), [])
    info = demo.get_api_info()["named_endpoints"]
    assert set(info) == {"/compare", "/attention", "/attention_downloads", "/attention_query", "/evaluate", "/metrics",
                         "/explain"}
    assert [p["parameter_name"] for p in info["/attention_query"]["parameters"]] == ["x", "y", "colormap", "opacity"]
    assert [p["parameter_name"] for p in info["/explain"]["parameters"]] == [
        "image", "models", "checkpoints", "detection", "method", "layers", "image_size"]
    assert [p["parameter_name"] for p in info["/compare"]["parameters"]] == [
        "image", "models", "checkpoints", "confidence", "iou", "image_size", "reference"]
    assert [p["parameter_name"] for p in info["/attention"]["parameters"]] == [
        "image", "models", "colormap", "opacity", "confidence", "image_size", "checkpoints", "stretch"]
    for name, endpoint in info.items():
        for p in endpoint["parameters"]:
            assert p["parameter_name"] == "image" or p["parameter_has_default"], (name, p["parameter_name"])
        for r in endpoint["returns"]:
            assert r["label"] and not r["label"].startswith("value_"), (name, r)
    assert [r["component"] for r in info["/compare"]["returns"]] == ["Gallery", "Dataframe", "Json"]  # no slider
    # The reference is any picked model's name, not only the page's first choices (issue 35).
    for endpoint in ("/compare", "/evaluate"):
        reference = next(p for p in info[endpoint]["parameters"] if p["parameter_name"] == "reference")
        assert reference["type"]["type"] == "string" and "enum" not in reference["type"]


def test_a_plain_call_needs_only_the_image(served_app, bccd_test_images):
    from gradio_client import Client, handle_file

    client = Client(served_app, verbose=False)
    gallery, table, detections = client.predict(image=handle_file(str(bccd_test_images[0])),
                                                models=["baseline", "ema"], api_name="/compare")
    assert len(gallery) == 2 and [row[0] for row in table["data"]] == ["baseline", "ema"]
    client.predict(image=handle_file(str(bccd_test_images[0])), models=["ema"], api_name="/attention")
    files = client.predict(api_name="/attention_downloads")
    assert {Path(f).suffix for f in files} == {".zip", ".npz"}


def test_explain_a_detection_that_compare_found(served_app, bccd_test_images):
    from gradio_client import Client, handle_file

    client = Client(served_app, verbose=False)
    image = handle_file(str(bccd_test_images[0]))
    _gallery, _table, answer = client.predict(image=image, models=["baseline", "ema"], confidence=0.001,
                                              api_name="/compare")
    found = max((d for d in answer["detections"] if d["model"] == "baseline"), key=lambda d: d["confidence"])
    detection = f"{found['class']} @ " + ",".join(str(v) for v in found["box"])
    cams, table = client.predict(image=image, models=["baseline", "ema"], detection=detection, method="XGradCAM",
                                 api_name="/explain")
    assert len(cams) == 2 and [row[0] for row in table["data"]] == ["baseline", "ema"]
    assert all(0 <= row[table["headers"].index("energy in box")] <= 1 for row in table["data"])
    for bad in ("RBC @ 1,2,3", "../../etc/passwd @ 1,2,3,4", "RBC @ 50,50,10,10"):
        answer = raw_call(served_app, "explain", [image, ["baseline"], [], bad, "Grad-CAM", ["P3"], 320])
        assert "event: error" in answer and "Traceback" not in answer


def job_processes() -> set[int]:
    """Lane job processes on this machine (read from /proc, independently of the lane)."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if b"attention_lens.jobs.child" in f.read():
                        found.add(int(entry))
            except OSError:
                pass
    return found


def test_a_cancelled_evaluation_leaves_no_job_process_and_the_views_answer_meanwhile(served_app, bccd_test_images,
                                                                                      tmp_path):
    """Issue 31: cancelling freed the queue but the work kept running; an evaluation held the views."""
    from gradio_client import Client, handle_file

    data = tmp_path / "set.zip"
    with zipfile.ZipFile(data, "w") as z:
        z.writestr("set/data.yaml", "path: .\ntest: images/test\nnames: {0: RBC, 1: WBC, 2: Platelets}\n")
        for p in bccd_test_images:
            z.write(p, f"set/images/test/{p.name}")
    before = job_processes()
    client = Client(served_app, verbose=False)
    job = client.submit(models=["baseline", "ema", "coordatt"], dataset=handle_file(str(data)), image_size=640,
                        api_name="/evaluate")
    deadline = time.monotonic() + 120
    while not job_processes() - before and time.monotonic() < deadline:
        time.sleep(0.1)  # polling for the job's process to appear, not a synchronisation of results
    assert job_processes() - before, "the evaluation never started a job process"
    # The views answer while the job runs.
    out = call_compare(Client(served_app, verbose=False), bccd_test_images[0], ["baseline", "ema"])
    assert len(out[0]) == 2
    assert job_processes() - before and not job.done(), "the evaluation ended before it could be cancelled"
    job.cancel()
    deadline = time.monotonic() + 15
    while job_processes() - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not job_processes() - before, "a cancelled evaluation's process kept running"
