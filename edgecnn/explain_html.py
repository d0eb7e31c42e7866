"""The ``edgecnn explain`` page and PNG set: one self-contained HTML file (images inline as data: URIs, no script,
no network) that reads on a phone, and the same images as PNG files.
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path

import numpy as np

from edgecnn import explain_images as draw
from edgecnn.outputs import pending_files, refuse_existing
from edgecnn.explain import Explanation
from edgecnn.layers import totals

_CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:0 12px 40px;color:#222}
h1{font-size:1.35em;word-break:break-all}h2{margin-top:1.6em;border-bottom:1px solid #ccc}h3{font-size:1em}
nav a{margin-right:1em}.wrap{overflow-x:auto}table{border-collapse:collapse;font-size:13px}
td,th{padding:2px 8px;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}
td.l,th.l{text-align:left}img{max-width:100%;height:auto;image-rendering:pixelated}
.bar{display:inline-block;height:10px;background:#3b7dd8;vertical-align:middle}
.cap{color:#555;font-size:13px}.note{background:#fff6d6;padding:6px 10px}figure{margin:0 0 1.2em}
"""


def _fmt_int(n: int) -> str:
    return f"{n:,}"


def _img(rgb: np.ndarray, alt: str) -> str:
    data = base64.b64encode(draw.png_bytes(rgb)).decode("ascii")
    return (f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}" '
            f'width="{rgb.shape[1]}" height="{rgb.shape[0]}">')


def map_name(layer) -> str:
    """PNG file name of a layer's feature-map grid, e.g. ``layer03_conv_2d.png``."""
    return f"layer{layer.index:02d}_{layer.op.lower()}.png"


def images(expl: Explanation) -> dict[str, np.ndarray]:
    """Every picture of the explanation as (H, W, 3) uint8 RGB, by PNG file name: ``input.png``,
    ``layerNN_<op>.png`` per drawn layer, ``filters.png``, ``occlusion.png`` (overlay) and ``occlusion_map.png``."""
    out = {"input.png": draw.enlarge(draw.to_rgb(expl.pixels), 192)}
    for m in expl.maps:
        out[map_name(m.layer)] = draw.feature_map_grid(m.values, m.channels)
    if expl.filters is not None:
        out["filters.png"] = draw.grid(draw.filter_tiles(expl.filters[1]), columns=16)
    if expl.occlusion is not None:
        out["occlusion.png"] = draw.heat_overlay(expl.pixels, expl.occlusion.heat)
        out["occlusion_map.png"] = draw.heat_image(expl.occlusion.heat)
    return out


def _prediction_list(expl: Explanation) -> str:
    items = "".join(f"<li>{html.escape(str(p.label if p.label is not None else p.index))} "
                    f"(class {p.index}): {p.score:.3f}</li>" for p in expl.top)
    kind = "probabilities" if expl.probabilities else "raw scores (not a probability vector)"
    return f"<p class=cap>Top {len(expl.top)} ({kind}):</p><ol>{items}</ol>"


def _layer_rows(expl: Explanation) -> str:
    total = totals(expl.layers)
    rows = []
    for x in expl.layers:
        share = x.macs / total["macs"] if total["macs"] else 0.0
        q = f"{x.scale:.6g} / {x.zero_point}" if x.scale else "-"
        rows.append(f"<tr><td>{x.index}</td><td class=l>{x.op}</td><td class=l>{tuple(x.shape)}</td>"
                    f"<td class=l>{x.dtype}</td><td>{q}</td><td>{_fmt_int(x.params)}</td><td>{_fmt_int(x.macs)}</td>"
                    f"<td class=l><span class=bar style=\"width:{share * 120:.1f}px\"></span> {share:.1%}</td></tr>")
    rows.append(f"<tr><th></th><th class=l>total</th><th></th><th></th><th></th><th>{_fmt_int(total['params'])}</th>"
                f"<th>{_fmt_int(total['macs'])}</th><th></th></tr>")
    head = ("<tr><th>#</th><th class=l>operator</th><th class=l>output shape</th><th class=l>dtype</th>"
            "<th>scale / zero point</th><th>params</th><th>MACs</th><th class=l>share of MACs</th></tr>")
    return f"<div class=wrap><table>{head}{''.join(rows)}</table></div>"


def _maps_section(expl: Explanation, pics: dict) -> str:
    if not expl.maps:
        return "<p>No feature maps (see the notes).</p>"
    parts = ["<p class=cap>Each channel is scaled on its own (dark: its lowest value, yellow: its highest); "
             "channels are ordered strongest first by mean |activation|, values dequantized from int8.</p>"]
    for m in expl.maps:
        shown, of = len(m.channels), m.values.shape[-1]
        sample = f"{shown} of {of} channels" + (" (the strongest)" if shown < of else "")
        order = ", ".join(str(int(c)) for c in m.channels)
        parts.append(f"<figure id=\"layer{m.layer.index}\"><h3>#{m.layer.index} {m.layer.op} "
                     f"{tuple(m.layer.shape)}</h3><p class=cap>{sample}; channels in order: {order}; values "
                     f"{m.values.min():.4g} .. {m.values.max():.4g}</p>"
                     f"{_img(pics[map_name(m.layer)], f'feature maps of layer {m.layer.index}')}</figure>")
    return "".join(parts)


def _filters_section(expl: Explanation, pics: dict) -> str:
    if expl.filters is None:
        return "<p>No CONV_2D layer, so no first-layer filters.</p>"
    layer, w = expl.filters
    colour = ("as RGB colour (input channels in the model's order)" if w.shape[-1] == 3 else
              "in grey" if w.shape[-1] == 1 else f"as the mean over {w.shape[-1]} input channels, in grey")
    return (f"<p class=cap>{w.shape[0]} kernels of {w.shape[1]}x{w.shape[2]}x{w.shape[3]} from #{layer.index} "
            f"{layer.op}, dequantized with their per-channel scales, each scaled on its own: mid grey is 0, "
            f"brighter is positive, darker negative; drawn {colour}. Weights {w.min():.4g} .. {w.max():.4g}.</p>"
            + _img(pics["filters.png"], "first-layer filters"))


def _occlusion_section(expl: Explanation, pics: dict) -> str:
    o = expl.occlusion
    if o is None:
        return "<p>Occlusion was not computed.</p>"
    label = next((p.label for p in expl.top if p.index == o.target and p.label is not None), None)
    name = f"{html.escape(label)} (class {o.target})" if label else f"class {o.target}"
    cost = (f"{o.positions} patch positions + 1 unoccluded image in {o.invokes} invokes "
            f"of {o.batch} image{'s' if o.batch > 1 else ''}")
    what = ("log-odds log(p / (1 - p)) of " + name + ", computed from the logits the final SOFTMAX gets (the "
            "int8 probability saturates at 255/256, where no single patch would move it)"
            if o.unit == "log-odds" else "score of " + name)
    return (f"<p class=cap>A grey patch (pixel value {o.fill}) of {o.patch}x{o.patch} pixels slides over the "
            f"{expl.pixels.shape[1]}x{expl.pixels.shape[0]} model input every {o.stride} pixels; each pixel shows "
            f"the mean drop of the {what} over the patches covering it; unoccluded: {o.base_score:.3f}. Bright: "
            f"hiding it lowers the {o.unit} most (largest drop {o.heat.max():.3f}; largest rise "
            f"{max(0.0, -o.heat.min()):.3f}, not coloured). Cost: {cost}.</p>"
            + _img(pics["occlusion.png"], "occlusion map over the image") + " "
            + _img(pics["occlusion_map.png"], "occlusion map"))


def _compare_section(expl: Explanation) -> str:
    rows = expl.comparison or []
    worst = max((r.rel_rmse for r in rows if np.isfinite(r.rel_rmse)), default=0.0)
    body = []
    for r in rows:
        width = 120 * r.rel_rmse / worst if worst > 0 and np.isfinite(r.rel_rmse) else 0.0
        body.append(f"<tr><td>{r.int8.index}</td><td>{r.float.index}</td><td class=l>{r.int8.op}</td>"
                    f"<td class=l>{tuple(r.int8.shape)}</td><td class=l><span class=bar style=\"width:{width:.1f}px\">"
                    f"</span> {r.rel_rmse:.2%}</td><td>{r.cosine:.5f}</td><td>{r.rmse:.4g}</td><td>{r.max_abs:.4g}</td>"
                    f"<td>{r.float_range[0]:.4g} .. {r.float_range[1]:.4g}</td></tr>")
    head = ("<tr><th>int8 #</th><th>float #</th><th class=l>operator</th><th class=l>output shape</th>"
            "<th class=l>RMSE / float range</th><th>cosine</th><th>RMSE</th><th>max |error|</th>"
            "<th>float range</th></tr>")
    return ("<p class=cap>The float model gets the real values the int8 input stands for; every int8 activation is "
            "dequantized and compared with the float activation of the paired operator (paired in execution order "
            "by operator and output shape, QUANTIZE/DEQUANTIZE left out). Worst layer first; an error that jumps "
            "at one layer and stays is where quantization hurts.</p>"
            f"<div class=wrap><table>{head}{''.join(body)}</table></div>")


def render_html(expl: Explanation, pics: dict[str, np.ndarray] | None = None) -> str:
    """The whole page as one HTML string (images inline as PNG data URIs; no script, no external resource).

    Args:
        expl: from :func:`edgecnn.explain.explain_image`.
        pics: from :func:`images` (computed when not given).
    """
    pics = pics if pics is not None else images(expl)
    total = totals(expl.layers)
    h, w, c = expl.pixels.shape
    notes = "".join(f"<p class=note>{html.escape(n)}</p>" for n in expl.notes or [])
    title = f"edgecnn explain: {expl.model} on {expl.image}"
    sections = [
        ("layers", "Layer table", _layer_rows(expl)),
        ("maps", "Feature maps", _maps_section(expl, pics)),
        ("filters", "First-layer filters", _filters_section(expl, pics)),
        ("occlusion", "Where it looks (occlusion)", _occlusion_section(expl, pics)),
    ]
    if expl.comparison is not None:
        sections.append(("compare", "Float vs int8, layer by layer", _compare_section(expl)))
    nav = "".join(f'<a href="#{k}">{t}</a>' for k, t, _ in sections)
    body = "".join(f'<section id="{k}"><h2>{t}</h2>{content}</section>' for k, t, content in sections)
    return (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            f"<meta name=viewport content=\"width=device-width,initial-scale=1\"><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<p class=cap>{html.escape(expl.backend)}; {len(expl.layers)} operators, "
            f"{_fmt_int(total['params'])} parameters, {_fmt_int(total['macs'])} MACs per image; the model sees "
            f"{w}x{h}x{c} pixels:</p>{_img(pics['input.png'], 'model input')}{_prediction_list(expl)}"
            f"{notes}<nav>{nav}</nav>{body}</body></html>")


def summary_text(expl: Explanation) -> str:
    """A few lines for the terminal: prediction, size of the model, what was drawn, occlusion cost, time."""
    total = totals(expl.layers)
    best = expl.top[0] if expl.top else None
    lines = [f"model        {expl.model} ({expl.backend})",
             f"image        {expl.image} -> {expl.pixels.shape[1]}x{expl.pixels.shape[0]}x{expl.pixels.shape[2]}"]
    if best is not None:
        lines.append(f"top-1        {best.label if best.label is not None else best.index} ({best.score:.3f})")
    lines.append(f"layers       {len(expl.layers)} operators, {total['params']:,} parameters, "
                 f"{total['macs']:,} MACs per image")
    lines.append(f"drawn        {len(expl.maps)} feature-map layers"
                 + (f", {expl.filters[1].shape[0]} first-layer filters" if expl.filters is not None else ""))
    o = expl.occlusion
    if o is not None:
        lines.append(f"occlusion    patch {o.patch} px, stride {o.stride} px: {o.positions} positions in "
                     f"{o.invokes} invokes of batch {o.batch}, {expl.seconds.get('occlusion', 0.0):.2f} s; "
                     f"largest drop {o.heat.max():.3f} ({o.unit})")
    if expl.comparison:
        w = expl.comparison[0]
        lines.append(f"float/int8   {len(expl.comparison)} layers compared; worst #{w.int8.index} {w.int8.op}: RMSE "
                     f"{w.rel_rmse:.2%} of the float range, cosine {w.cosine:.4f}")
    return "\n".join(lines)


def planned_files(expl: Explanation, html_path: str | None, png_dir: str | None) -> dict[Path, bytes]:
    """{path: file bytes} of the page and PNGs to write (PNGs named as in :func:`images`)."""
    pics = images(expl)
    files: dict[Path, bytes] = {}
    if png_dir is not None:
        files.update({Path(png_dir) / name: draw.png_bytes(rgb) for name, rgb in pics.items()})
    if html_path is not None:
        files[Path(html_path)] = render_html(expl, pics).encode("utf-8")
    return files


def write_outputs(expl: Explanation, html_path: str | None, png_dir: str | None, overwrite: bool) -> list[Path]:
    """Write the page and/or the PNG folder (made if missing). Existing files are refused before anything is
    written unless ``overwrite``.

    Returns:
        the paths written.
    Raises:
        OutputExistsError: a file exists and ``overwrite`` is False (checked before anything is written).
        OSError: a file or the folder cannot be written.
    """
    files = planned_files(expl, html_path, png_dir)
    for p in files:
        refuse_existing(p, overwrite)
    if png_dir is not None:
        Path(png_dir).mkdir(exist_ok=True)
    with pending_files() as pending:
        for p, data in files.items():
            pending.path(p).write_bytes(data)
    return list(files)
