"""PnP-OVSS: training-free open-vocabulary segmentation with a frozen image-text matching model.

    seg = pnpovss.Segmenter(model='Salesforce/blip-itm-large-flickr')
    result = seg.segment(image, ['cat', 'couch'])  # image: uint8 array [H, W, 3]
    result.labels  # int32 [H, W]: 0 background, k = classes[k-1]
"""
from typing import Any, Dict, List, Literal, Optional, Sequence, Union, overload

import numpy as np
import numpy.typing as npt

__version__: str

ClassList = Union[str, Sequence[str]]
"""Class names: a list, or one str with names separated by commas ("cat, sofa")."""

Count = Union[int, str]
"""A number of images, or 'auto'."""


class Result:
    """What Segmenter.segment() returns. The arrays view the C++ buffers (no copy)."""

    labels: npt.NDArray[np.int32]
    """int32 [H, W]: 0 background, k = classes[k-1] (as the label PNG of `pnp-ovss segment`)."""
    scores: npt.NDArray[np.float32]
    """float32 [C, H, W]: the channel maps the labels are decided from (blurred when blur applies,
    before the CRF), in the order of channel_names."""
    channel_names: List[str]
    """'background' first when used, then the classes."""
    classes: List[str]
    has_background: bool
    timings: Dict[str, float]
    """Seconds per stage."""


class Segmenter:
    """A loaded model ready to segment.

    model: a model directory or a hub id org/name[@revision] (downloaded into the Hugging Face cache
    when missing). device: cpu, cuda or cuda:N; dtype: fp32, bf16 or fp16 (CUDA only). Settings are
    the options of `pnp-ovss segment` as keywords; settings= takes a settings JSON file (tune's
    best_settings.json) or the same as a dict. A bad value raises ValueError naming the keyword
    ("layer=9 is out of range: ..."), an unknown keyword TypeError.
    """

    def __init__(
        self,
        model: str = "Salesforce/blip-itm-large-flickr",
        device: str = "cpu",
        dtype: Literal["fp32", "bf16", "fp16"] = "fp32",
        *,
        preset: Optional[Literal["paper", "official"]] = None,
        settings: Optional[Union[str, Dict[str, Any]]] = None,
        size: Optional[int] = None,
        layer: Optional[int] = None,
        head: Optional[int] = None,
        threshold: Optional[float] = None,
        blur: Optional[float] = None,
        iterations: Optional[int] = None,
        postprocess: Optional[Literal["none", "blur", "crf", "blur+crf"]] = None,
        background: Optional[Literal["auto", "always", "never"]] = None,
        threads: Optional[int] = None,
        postprocess_device: Optional[str] = None,
    ) -> None: ...

    def segment(self, image: npt.NDArray[np.uint8], classes: ClassList) -> Result:
        """Segments an RGB image (uint8 array [H, W, 3]) into `classes`. Ctrl-C stops it with
        KeyboardInterrupt; a bad class list raises ValueError."""

    @overload
    def segment_many(
        self,
        images: Sequence[npt.NDArray[np.uint8]],
        classes: Union[ClassList, Sequence[Sequence[str]]],
        workers: Count = "auto",
        batch_size: Count = "auto",
        on_error: Literal["raise"] = "raise",
    ) -> List[Result]: ...
    @overload
    def segment_many(
        self,
        images: Sequence[npt.NDArray[np.uint8]],
        classes: Union[ClassList, Sequence[Sequence[str]]],
        workers: Count = "auto",
        batch_size: Count = "auto",
        *,
        on_error: Literal["none"],
    ) -> List[Optional[Result]]:
        """Segments a list of RGB images; `classes` is one class list for all of them or one per
        image. Results are in image order, each equal to segment() on its image. workers and
        batch_size as `pnp-ovss segment --workers/--batch-size`. A failing image fails alone:
        on_error='raise' raises for the first one once every image has run, naming it; 'none' puts
        None in its place."""

    @property
    def settings(self) -> Dict[str, Any]:
        """Every resolved setting (layers and heads from 1), as output records write them."""
    @property
    def model_dir(self) -> str: ...
    @property
    def model_type(self) -> Literal["blip", "bridgetower"]: ...


def run_cli(args: Sequence[str]) -> int:
    """Runs `pnp-ovss ARGS...` in this process and returns its exit status. A failed run raises
    RuntimeError (ValueError for a usage error) with the message the command line prints."""


def cli_args(command: str, *args: Any, **options: Any) -> List[str]:
    """The argument list eval() and tune() pass to run_cli: cli_args('eval', dataset='voc20',
    limit=5) -> ['eval', '--dataset', 'voc20', '--limit', '5']."""


def eval(*args: Any, **options: Any) -> int:
    """`pnp-ovss eval` with keyword arguments as options (dataset='voc20', data_root=..., out=...,
    restart=True); returns the exit status. Ctrl-C leaves the run folder resumable."""


def tune(*args: Any, **options: Any) -> int:
    """`pnp-ovss tune` with keyword arguments as options; returns the exit status."""


def resolve_model(model: str) -> str:
    """The local folder of a model directory or hub id, downloading the hub id into the Hugging Face
    cache when missing."""
