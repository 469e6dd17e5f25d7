import json

from PIL import Image

from r2r.report import pairs, write_report


def test_report_pairs_inputs_with_outputs(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    (src / "a").mkdir(parents=True)
    (out / "a").mkdir(parents=True)
    for name, color in (("x", "red"), ("y", "blue")):
        Image.new("RGB", (48, 64), color).save(src / "a" / f"{name}.jpg")
        Image.new("RGB", (48, 64), "green").save(out / "a" / f"{name}.png")
    Image.new("RGB", (48, 64), "green").save(out / "orphan.png")  # no source: not paired
    (out / "r2r_run.json").write_text(json.dumps({"strength": 0.3}))
    assert [(s.name, o.name) for s, o in pairs(src, out)] == [("x.jpg", "x.png"), ("y.jpg", "y.png")]
    page, png = write_report(src, out)
    text = page.read_text()
    assert "&quot;strength&quot;: 0.3" in text and text.count("<tr>") == 3
    with Image.open(png) as im:
        left, right = im.getpixel((10, 10)), im.getpixel((192 + 10, 10))
    assert left[0] > 200 and left[1] < 60  # the red rendered input on the left
    assert right[1] > 100 and right[0] < 60  # the green translation on the right
