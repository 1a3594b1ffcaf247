"""The input of one forward: the letterbox ultralytics' predictor makes (the views), the one its
validator makes (the evaluation pass), their geometry, and the image sizes any view or evaluation
accepts (checked before anything of that size is allocated).

RT-DETR is fed differently: ultralytics' RT-DETR predictor and validator stretch the image to an
``imgsz`` square (``scale_fill``: no padding, a gain per axis). ``stretches_input`` tells which a
model takes; ``model_input`` / ``val_input`` make it; every mapping between image and input pixels
(``letterbox_geometry``, ``input_cell``) takes ``stretched`` and is then that stretch's."""
from __future__ import annotations

import math

import numpy as np
import torch


#: The image sizes (letterbox side, pixels) any view or evaluation accepts.
MIN_IMGSZ, MAX_IMGSZ = 32, 1280


class ImageSizeError(ValueError):
    """An image size outside [MIN_IMGSZ, MAX_IMGSZ] (or not a whole number)."""


def check_image_size(imgsz) -> int:
    """``imgsz`` as an int, or ImageSizeError: checked before anything of that size is allocated."""
    if isinstance(imgsz, str) and imgsz.strip().isdigit():
        imgsz = int(imgsz)
    if isinstance(imgsz, float) and imgsz.is_integer():
        imgsz = int(imgsz)
    if not isinstance(imgsz, int) or isinstance(imgsz, bool) or not MIN_IMGSZ <= imgsz <= MAX_IMGSZ:
        raise ImageSizeError(f"Image size must be a whole number of pixels from {MIN_IMGSZ} to {MAX_IMGSZ}.")
    return imgsz


def is_detr(model: torch.nn.Module) -> bool:
    """Whether ``model``'s head is ultralytics' RTDETRDecoder: ranked queries, decoded without NMS
    (``detect.from_prediction``, ``explain``), and the one kind of model fed stretched."""
    from ultralytics.nn.modules.head import RTDETRDecoder

    layers = getattr(model, "model", None)
    return isinstance(layers, torch.nn.Sequential) and len(layers) > 0 and isinstance(layers[-1], RTDETRDecoder)


def stretches_input(model: torch.nn.Module) -> bool:
    """Whether ``model`` is fed its image stretched to a square rather than letterboxed: RT-DETR
    (ultralytics' RTDETRPredictor and RTDETRValidator use ``scale_fill``)."""
    return is_detr(model)


def input_key(model: torch.nn.Module) -> tuple[int, bool]:
    """Models with the same key take the same input for one image and size (one letterbox is shared)."""
    return model_stride(model), stretches_input(model)


def model_input(model: torch.nn.Module, image_rgb: np.ndarray, imgsz: int) -> torch.Tensor:
    """(1, 3, h, w): what ultralytics' predictor feeds ``model`` (``letterbox`` or ``stretch``)."""
    stride = model_stride(model)
    return stretch(image_rgb, imgsz, stride) if stretches_input(model) else letterbox(image_rgb, imgsz, stride)


def stretch(image_rgb: np.ndarray, imgsz: int, stride: int = 32) -> torch.Tensor:
    """(1, 3, s, s): the image stretched to the square, as ultralytics' RT-DETR predictor feeds it
    (its own LetterBox with scale_fill; bilinear, as the validator's loader resizes); the side
    ``imgsz`` rounded up to a multiple of ``stride``, as ultralytics' check_imgsz does."""
    from ultralytics.data.augment import LetterBox

    side = math.ceil(check_image_size(imgsz) / stride) * stride
    return _as_input(LetterBox((side, side), auto=False, scale_fill=True)(image=image_rgb))


def val_input(model: torch.nn.Module, image_rgb: np.ndarray, imgsz: int) -> tuple[torch.Tensor, tuple]:
    """(input, ratio_pad) as ultralytics' validator feeds ``model`` one image: ``val_letterbox``,
    or for RT-DETR the stretch (its dataset resizes to the square, no rect, no padding)."""
    if not stretches_input(model):
        return val_letterbox(image_rgb, imgsz, model_stride(model))
    x = stretch(image_rgb, imgsz, model_stride(model))
    h0, w0 = image_rgb.shape[:2]
    return x, ((x.shape[2] / h0, x.shape[3] / w0), (0.0, 0.0))


def letterbox(image_rgb: np.ndarray, imgsz: int, stride: int = 32) -> torch.Tensor:
    """(1, 3, h, w) float tensor, letterboxed the way ultralytics' predictor does (rect, centred)."""
    from ultralytics.data.augment import LetterBox

    imgsz = check_image_size(imgsz)

    return _as_input(LetterBox((imgsz, imgsz), auto=True, stride=stride)(image=image_rgb))


def _as_input(boxed: np.ndarray) -> torch.Tensor:
    """(1, 3, h, w) float tensor in [0, 1] of a letterboxed HxWx3 uint8 image. Scaled in numpy (the
    same float32 division): a torch op this small still wakes PyTorch's thread pool, which then
    competes with ONNX Runtime's spinning threads."""
    chw = np.ascontiguousarray(boxed.transpose(2, 0, 1), dtype=np.float32)
    chw /= np.float32(255)
    return torch.from_numpy(chw).unsqueeze(0)


#: The validator pads each rect batch's shape by half a stride (ultralytics' build_yolo_dataset, mode "val").
VAL_PAD = 0.5


def val_resized_hw(original_hw: tuple[int, int], imgsz: int) -> tuple[int, int]:
    """(h, w) the validator's image loader resizes an image to before padding: the long side to
    ``imgsz``, each side rounded up and capped (ultralytics' BaseDataset.load_image, rect mode)."""
    h0, w0 = original_hw
    r = imgsz / max(h0, w0)
    if r == 1:
        return h0, w0
    return min(math.ceil(h0 * r), imgsz), min(math.ceil(w0 * r), imgsz)


def val_letterbox(image_rgb: np.ndarray, imgsz: int, stride: int = 32) -> tuple[torch.Tensor, tuple]:
    """((1, 3, h, w) float tensor, ratio_pad) as ultralytics' validator feeds an image when a
    checkpoint is validated (``yolo val``: rect batches; here batches of one, each image at its
    own rect shape): resized by the loader's rule (``val_resized_hw``, bilinear), then padded,
    centred, by ultralytics' own LetterBox to the rect shape (long side ``imgsz``, the short side
    rounded up to a stride multiple after half a stride of padding). ``ratio_pad`` is
    ((gain_h, gain_w), (pad_left, pad_top)), what the validator hands scale_boxes."""
    import cv2
    from ultralytics.data.augment import LetterBox

    imgsz = check_image_size(imgsz)
    h0, w0 = image_rgb.shape[:2]
    h1, w1 = val_resized_hw((h0, w0), imgsz)
    resized = image_rgb if (h1, w1) == (h0, w0) else cv2.resize(image_rgb, (w1, h1), interpolation=cv2.INTER_LINEAR)
    ar = h0 / w0  # the rect shape follows the original's aspect ratio (BaseDataset.set_rectangle)
    fraction = [ar, 1.0] if ar < 1 else [1.0, 1 / ar] if ar > 1 else [1.0, 1.0]
    rect = (np.ceil(np.array(fraction) * imgsz / stride + VAL_PAD).astype(int) * stride).tolist()
    out = LetterBox(auto=False, scaleup=False)(labels={"img": resized, "ratio_pad": (h1 / h0, w1 / w0),
                                                       "rect_shape": rect})
    return _as_input(out["img"]), out["ratio_pad"]


def letterbox_geometry(input_hw: tuple[int, int], original_hw: tuple[int, int], stretched: bool = False
                       ) -> tuple[float, float, int, int]:
    """(gain_x, gain_y, pad_x, pad_y) of a letterbox from ``original_hw`` to ``input_hw``:
    input pixel = original pixel * gain + pad, exactly as ultralytics' scale_boxes inverts it
    (each resized side rounded, the padding centred). ``stretched``: the image fills the input
    (``stretch``), a gain per axis and no padding."""
    (ih, iw), (h0, w0) = input_hw, original_hw
    if stretched:
        return iw / w0, ih / h0, 0, 0
    gain = min(ih / h0, iw / w0)
    new_h, new_w = max(round(h0 * gain), 1), max(round(w0 * gain), 1)
    return new_w / w0, new_h / h0, round((iw - new_w) / 2 - 0.1), round((ih - new_h) / 2 - 0.1)


def val_geometry(ratio_pad: tuple) -> tuple[float, float, int, int]:
    """``letterbox_geometry`` of a validator's input (``val_input``) from its ``ratio_pad``
    ((gain_h, gain_w), (pad_left, pad_top)): the loader's resize per axis, then the padding.
    (ultralytics' scale_boxes undoes its boxes with gain_h alone; a map is placed by both.)"""
    (gain_h, gain_w), (pad_x, pad_y) = ratio_pad
    return float(gain_w), float(gain_h), int(pad_x), int(pad_y)


def input_cell(point_xy: tuple[float, float], input_hw: tuple[int, int], original_hw: tuple[int, int], stride: int,
               feature_hw: tuple[int, int], stretched: bool = False, geometry: tuple | None = None) -> tuple[int, int]:
    """(row, col) of the feature cell an original-pixel point falls in: through the letterbox
    (``letterbox_geometry``, or ``geometry`` where the caller has it) into input pixels, then
    down by ``stride``; held on the grid."""
    gx, gy, px, py = geometry or letterbox_geometry(input_hw, original_hw, stretched)
    h, w = feature_hw
    col = min(max(int((float(point_xy[0]) * gx + px) // stride), 0), w - 1)
    row = min(max(int((float(point_xy[1]) * gy + py) // stride), 0), h - 1)
    return row, col


def model_stride(model: torch.nn.Module) -> int:
    return max(int(getattr(model, "stride", torch.tensor([32])).max()), 32)
