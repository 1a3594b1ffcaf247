"""Widget groups that several tabs share."""
from __future__ import annotations

import os

import gradio as gr

#: Queue settings for every event that runs model forwards (compare, its reruns, attention): one
#: at a time across all of them. Their forwards run one at a time on the torch thread anyway
#: (attention_lens/torch_thread.py); a queue slot of 1 shows users their place in line instead of
#: parking gradio workers on that thread.
INFERENCE_QUEUE = {"concurrency_id": "inference", "concurrency_limit": 1}

#: How long a session's stored results (the slider's images, the last attention inspection)
#: are kept after its last event; with ``STATE_SESSIONS`` they bound the memory state can hold.
STATE_TTL_S = int(os.environ.get("ATTENTION_LENS_STATE_TTL", 1800))
#: Sessions whose state the server keeps at most (gradio drops the oldest beyond this). Each
#: holds a copy of the page's last outputs, ~5 MB after an attention view (soak, docs in README).
STATE_SESSIONS = 50

#: How result images travel to the browser: JPEG, because gradio's default WebP took most of the
#: wait after the models had run (docs/PERFORMANCE.md, sections 5 and 11). Downloads stay lossless.
DISPLAY_FORMAT = "jpeg"


def image_input(elem_id: str, height: int = 300) -> gr.Image:
    """An image input (raw path); ``examples_for`` puts the example images further down."""
    return gr.Image(type="filepath", label="Image", sources=["upload", "clipboard"], height=height, elem_id=elem_id)


def examples_for(image: gr.Image, examples: list[str]) -> None:
    """The example images, as one click fills ``image``."""
    if examples:
        gr.Examples(examples=[[e] for e in examples], inputs=[image], label="Examples", cache_examples=False)


#: Page CSS (gradio 6 takes it in ``launch``): a model picker with many models scrolls inside a
#: box of about ten rows, with tighter rows, instead of pushing the rest of the column down.
#: A gallery of maps (class ``map-gallery``) grows with its rows instead of scrolling inside 55% of
#: the window (gradio's gallery at height "auto"), each tile takes its image's shape rather than a
#: square, and the caption sits under the image, wrapped, instead of over it and cut.
CSS = """
.model-picker .wrap { max-height: 23rem; overflow-y: auto; gap: 0.25rem; }
.model-picker .wrap label { padding: 0.2rem 0.5rem; }
.map-gallery .grid-wrap { max-height: none; overflow-y: visible; }
.map-gallery .thumbnail-item { aspect-ratio: auto; height: auto; display: flex; flex-direction: column; }
.map-gallery .thumbnail-item img { height: auto; }
.map-gallery .caption-label { position: static; white-space: normal; max-width: none; border: none; opacity: 0.8; }
.offscreen { position: absolute !important; left: -10000px; width: 1px; height: 1px; overflow: hidden; }
"""

#: Page script (gradio 6 takes it in ``launch``): gradio's Plot sends Python no plotly events, so a
#: click on a flow of the Evaluate tab's Sankey (``views.results.outcomes_figure``: each link
#: carries its flow's key as customdata) is written into an off-screen textbox
#: (``FLOW_CLICK_ID``), whose change event selects that flow. Each newly drawn plot is hooked once.
FLOW_CLICK_ID = "evaluate-flow-click"
PAGE_JS = """
() => {
  const hook = () => {
    const plot = document.querySelector('#evaluate-outcomes .js-plotly-plot');
    if (!plot || plot.__flowClick || typeof plot.on !== 'function') return;
    plot.__flowClick = true;
    plot.on('plotly_click', (ev) => {
      const key = ev && ev.points && ev.points[0] && ev.points[0].customdata;
      const box = document.querySelector('#%s textarea, #%s input');
      if (!key || !box) return;
      box.value = key;
      box.dispatchEvent(new Event('input', {bubbles: true}));
    });
  };
  new MutationObserver(hook).observe(document.body, {childList: true, subtree: true});
}
""" % (FLOW_CLICK_ID, FLOW_CLICK_ID)


def map_gallery(label: str, elem_id: str) -> gr.Gallery:
    """A gallery of maps over the image (Explain's, the Attention tab's): three a row, each whole
    (contain), growing with its rows (the ``map-gallery`` rules of ``CSS``)."""
    return gr.Gallery(label=label, columns=3, height="auto", object_fit="contain", elem_id=elem_id,
                      elem_classes=["map-gallery"], format=DISPLAY_FORMAT)


def model_picker(store, value: list[str], label: str) -> gr.CheckboxGroup:
    """The shipped models, grouped by base and placement (``ModelStore.names``), labelled with both."""
    info = f"{len(store.names)} models, by base and placement" if len(store.names) > 8 else None
    return gr.CheckboxGroup(choices=[(store.entries[n].label, n) for n in store.names], value=value, label=label,
                            info=info, elem_classes=["model-picker"])


def model_name_dropdown(**kwargs) -> gr.Dropdown:
    """A dropdown whose choices follow the picked models. Its API takes any model name: gradio would
    type it as only the choices the page first loaded with (the default selection's names). The
    instance's ``api_info`` says so (a subclass would be taken for a custom component, whose
    frontend files gradio then looks for and the page never finishes loading)."""
    dropdown = gr.Dropdown(allow_custom_value=True, **kwargs)
    dropdown.api_info = lambda: {"type": "string", "description": "a model name, one of the models picked in the same call"}
    return dropdown


def reference_choices(store, selected, current):
    """The reference must be one of the picked models: keep it, else a baseline (a catalogue entry
    without attention), else the first."""
    selected = selected or []
    baseline = store.baseline_name(selected)
    value = current if current in selected else (baseline or (selected[0] if selected else None))
    return gr.update(choices=selected, value=value)
