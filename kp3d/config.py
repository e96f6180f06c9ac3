"""The one training configuration of the unsupervised keypoint model.

:class:`Config` holds every knob of the model, the losses and the training loop, one line each: what
it is, its unit, and the paper's value as its default (Honari et al., Sec. 3.3 and S.1; profile
``paper-h36m``). The other profiles (:mod:`kp3d.profiles`) change sizes and the few choices a small
CPU model needs; a field's line names the section of ``docs/recipe.md`` that says why.

Units: ``image_size`` / ``patch_size`` in pixels (square views and patches); ``sigma`` in normalised
[-1, 1] patch units, i.e. ``sigma * P / 2`` pixels (``kp3d.geometry.gaussian_heatmaps``); boxes
``(s_x, s_y, u_x, u_y)`` in normalised [-1, 1] image units (``kp3d.geometry``).

Example:
    >>> from kp3d.profiles import get_config
    >>> cfg = get_config("smoke", max_iters=5)
    >>> cfg.max_iters, cfg.profile
    (5, 'smoke')
    >>> Config.from_dict(cfg.to_dict()) == cfg
    True
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, fields
from typing import Any

PROFILES = ("smoke", "cpu-demo", "paper-h36m", "paper-3dhp")

ENV_PROFILE = "KP3D_PROFILE"


def check_profile(profile: str) -> str:
    """Return ``profile`` if it names a known profile, else raise a ValueError listing them."""
    if profile not in PROFILES:
        raise ValueError(
            f"unknown profile {profile!r}: expected one of {', '.join(PROFILES)} "
            f"(set it with -p PROFILE <name> in papermill or {ENV_PROFILE}=<name>)"
        )
    return profile


MASK_TARGETS = ("predicted", "gt", "img-bg", "img-bg-mask")
CROP_SOURCES = ("detector", "gt-mask", "img-bg")  # Config.crop_source
AMP_MODES = ("auto", "bf16", "none")  # Config.amp
DETECTOR_INPUTS = ("rgb", "img-bg-soft")  # Config.detector_input
KEYPOINT_INPUTS = ("latent", "gt-mask", "img-bg", "img-bg-soft", "rgb", "pred-mask")  # Config.keypoint_input
BACKBONES = ("tiny", "resnet18", "resnet34", "resnet50")
LOSS_REDUCTIONS = ("mean", "sum")


def is_synthetic(data: str) -> bool:
    """Whether ``data`` names the embedded synthetic set: "synthetic" or "synthetic?seed=N"."""
    return str(data).partition("?")[0] == "synthetic"


def check_cleanup(k: int, name: str = "cleanup") -> None:
    """Raise unless ``k`` is a valid ``Config.foreground_cleanup``: 0 (off) or an odd kernel size >= 3."""
    if k and (k < 3 or k % 2 == 0):
        raise ValueError(f"{name}={k}: expected 0 (off) or an odd kernel size >= 3, e.g. 3")


def check_shadow_chroma(c: float, name: str = "shadow_chroma") -> None:
    """Raise unless ``c`` is a valid ``Config.shadow_chroma``: 0 (off) or a chromaticity distance in (0, 2)."""
    if not 0 <= c < 2:
        raise ValueError(f"{name}={c}: expected 0 (off) or an L1 chromaticity distance in (0, 2), e.g. 0.08")


# Fields removed because they were off in every profile and moved nothing (docs/recipe.md keeps
# their figures), with their neutral values: older checkpoints that carry them at these values still load.
REMOVED_FIELDS: dict[str, Any] = {"w_concentration": 0.0, "keypoint_encoder_grad_scale": 1.0, "keypoint_encoder": "shared",
                                  "encoder_pool": "avg", "mask_decoder_hidden": 1, "box_prior_augment": 0.0,
                                  "mask_init_bias": 0.0}


@dataclass
class Config:
    """Everything that defines a training run. Defaults are the paper's (Human3.6M, Sec. 3.3, S.1)."""

    # run
    profile: str = "paper-h36m"  # the preset this config came from (kp3d.profiles)
    data: str = "synthetic"  # "synthetic[?seed=N]" | "h36m:/path" | "3dhp:/path" | "rig:/path" (data_utils.datasets)
    calibration: str = ""  # rig only: calibration file; "" = the one in the rig folder (docs/own_rig.md)
    seed: int = 0
    synthetic_frames: int = 0  # synthetic: frames per subject, 0 = the preset (recipe "What does supervision reach ...?")

    # sizes (S.1.1)
    n_keypoints: int = 32  # N; 48 on 3DHP
    views: tuple = (0, 1, 2, 3)  # camera indices of each sample; the paper uses 4 (Table 5: 2/3/4)
    image_size: int = 500  # px, square input views
    patch_size: int = 128  # px, crop resolution P, a multiple of 8 (the decoders start at P/8)
    detector: str = "resnet18"  # detector S backbone ("tiny": a 4-layer CNN for CPUs and tests)
    detector_downsample: int = 4  # S reads the frame downsampled by this factor
    detector_input: str = "rgb"  # "rgb" (paper) | "img-bg-soft": the soft |I - B| (cpu-demo; recipe "The ladder")
    detector_pool: str = "avg"  # "avg" (paper silent) | "flatten" (cpu-demo; recipe "Does the detector see ...?")
    encoder: str = "resnet50"  # encoder E backbone
    latent_dim: int = 729  # size of Xi: 729 on H36M, 1029 on 3DHP (S.1.1)
    decoder_channels: tuple = (256, 128, 64, 32)  # Table S1: channels at P/8, P/4, P/2, P
    decoder_convs_per_block: int = 3  # Table S1: conv3x3+ReLU per upsampling block
    decoder_dropout: float = 0.1  # rate of the decoders' "linear with dropout" (paper: unstated)

    # keypoints and masks
    sigma: float = 0.02  # Gaussian std of the keypoint masks, [-1, 1] patch units (sigma * P / 2 px)
    sigma_start: float = 0.0  # 0 = sigma throughout (paper); > 0 anneals from it (recipe "The box prior")
    sigma_anneal_iters: int = 0  # steps after the warm-up over which sigma_start -> sigma
    softmax_temperature: float = 1.0  # soft-argmax over C_n / T; the paper's plain softmax is T = 1
    mask_decoder_last_init_std: float = 0.0  # 0 = PyTorch init (paper silent); > 0: near an empty mask at first
    box_init_scale: float = 0.75  # the detector's initial box side, centred (paper silent)
    box_min_scale: float = 0.1  # the box side is squashed into [box_min_scale, 1] (paper silent)
    mask_oracle: bool = False  # diagnosis only (rung M0): M_p also fitted to the GT mask

    # losses (Eq. 10-15)
    use_perceptual_loss: bool = True  # the beta term of Eq. 10
    use_mask_loss: bool = True  # Eq. 11
    use_coverage_loss: bool = True  # Eq. 13
    use_centering_loss: bool = True  # Eq. 14; cpu-demo drops it (recipe "The ladder")
    reconstruction_only: bool = False  # Table 4 row 1: train Eq. 10 only
    w_patch: float = 0.0  # not in the paper: weight of ||p - D_p||^2 (recipe "... mask collapse?")
    patch_loss_warmup_only: bool = False  # w_patch only during the warm-up (recipe "... mask collapse?")
    w_box_prior: float = 0.0  # not in the paper: L1 pull of the box to |I - B| (recipe "The box prior")
    box_prior_threshold: float = 0.1  # |I - B| (RGB mean, [0, 1]) counted as foreground; cpu-demo 0.05 (recipe "The ladder")
    box_prior_margin: float = 1.15  # box side = this x the foreground's larger extent
    foreground_cleanup: int = 0  # not in the paper: 0 = off, odd k >= 3 closes+opens |I - B| (recipe "The ladder")
    shadow_chroma: float = 0.0  # not in the paper: > 0 drops the floor shadow from |I - B| (recipe "The ladder")
    w_perceptual: float = 2.0  # beta
    w_mask: float = 0.5  # gamma (5.0 on 3DHP)
    w_coverage: float = 0.01  # delta
    w_centering: float = 1.0  # eta
    mask_target: str = "predicted"  # Table 6: "predicted" (M_p, paper) | "gt" | "img-bg" | "img-bg-mask"
    detach_mask_target: bool = True  # paper silent: Eq. 11/13 do not move M_p (recipe "... mask collapse?")
    centering_box_only: bool = False  # Eq. 14 moves only the box (paper: both)
    centering_keypoints_only: bool = False  # Eq. 14 moves only the keypoints (recipe "... mask collapse?")
    keypoint_box_grad: bool = True  # False: keypoints read the box detached (paper: True; recipe "... mask collapse?")
    keypoint_encoder_grad: bool = True  # False: psi reads Xi detached (paper: True; recipe "... mask collapse?")

    # the ladder from the geometric bottleneck to the full model (recipe "The ladder")
    keypoint_input: str = "latent"  # psi reads "latent" (Xi, paper) | "gt-mask" | "img-bg" | "img-bg-soft" | "rgb" | "pred-mask"
    crop_source: str = "detector"  # the patch's box: "detector" (S, paper) | "gt-mask" | "img-bg" (fixed boxes)
    image_reconstruction: bool = True  # False: no image decoder and no Eq. 10 (the geometric bottleneck alone)
    loss_reduction: str = "mean"  # Eq. 10/11 norms "mean" or "sum" over pixels (paper silent)
    perceptual_weights: str = ""  # ImageNet ResNet18 weights file; "" = torchvision's hub cache
    perceptual_fallback: str = "random"  # without weights: "random" (a fixed seed-0 ResNet18) | "off"

    # optimisation (S.1.3)
    max_iters: int = 200_000  # training steps
    batch_size: int = 32  # samples per step over all processes, each with len(views) views
    lr: float = 1e-4  # Adam, encoder, decoders and keypoint head
    lr_detector: float = 2e-5
    lr_image_decoder: float = 2e-5
    weight_decay: float = 0.0
    grad_clip: float = 0.0  # max gradient norm, 0 = off (paper silent)
    warmup_iters: int = 0  # reconstruction-only steps before the keypoint losses (paper: none)
    keypoint_ramp_iters: int = 0  # then the keypoint-loss weights ramp linearly over this many steps
    amp: str = "auto"  # "auto": bf16 where native | "bf16" | "none" (recipe "Why does training crawl ...?")
    channels_last: bool = True
    num_workers: int = 4  # data loader processes
    log_every: int = 50
    ckpt_every: int = 5000  # steps (log_every too)
    keep_checkpoints: int = 0  # step checkpoints kept, 0 = all (notebook 04 shows their progress)

    def __post_init__(self) -> None:
        self.views = tuple(int(v) for v in self.views)
        self.decoder_channels = tuple(int(c) for c in self.decoder_channels)
        self.validate()

    def validate(self) -> "Config":
        """Raise a ValueError naming the bad field and the fix; return self."""
        check_profile(self.profile)
        if self.patch_size % 8 or self.patch_size < 8:
            raise ValueError(f"patch_size={self.patch_size}: must be a positive multiple of 8 (decoders start at P/8)")
        for name in ("encoder", "detector"):
            if getattr(self, name) not in BACKBONES:
                raise ValueError(f"{name}={getattr(self, name)!r}: expected one of {BACKBONES}")
        if self.synthetic_frames < 0 or (self.synthetic_frames and not is_synthetic(self.data)):
            raise ValueError(f"synthetic_frames={self.synthetic_frames} with data={self.data!r}: it sets the size of the "
                             f"embedded synthetic set (frames per subject, >= 1); use 0 for other data")
        if self.detector_pool not in ("avg", "flatten"):
            raise ValueError(f"detector_pool={self.detector_pool!r}: expected 'avg' or 'flatten'")
        if self.detector_input not in DETECTOR_INPUTS:
            raise ValueError(f"detector_input={self.detector_input!r}: expected one of {DETECTOR_INPUTS}")
        if self.keypoint_input not in KEYPOINT_INPUTS:
            raise ValueError(f"keypoint_input={self.keypoint_input!r}: expected one of {KEYPOINT_INPUTS}")
        if self.crop_source not in CROP_SOURCES:
            raise ValueError(f"crop_source={self.crop_source!r}: expected one of {CROP_SOURCES}")
        if not self.image_reconstruction:
            bad = [f"{k}={v!r}" for k, v, ok in (
                ("crop_source", self.crop_source, self.crop_source != "detector"),
                ("keypoint_input", self.keypoint_input, self.keypoint_input not in ("latent", "pred-mask")),
                ("mask_target", self.mask_target, self.mask_target != "predicted")) if not ok]
            if bad or self.reconstruction_only:
                raise ValueError(f"image_reconstruction=False without the image decoder cannot use {', '.join(bad) or 'reconstruction_only'}:"
                                 f" use a fixed crop_source, a keypoint_input read from the patch and a mask_target from the data")
        if self.mask_oracle and not self.image_reconstruction:
            raise ValueError("mask_oracle=True fits the image decoder's mask M_p, but image_reconstruction=False has no decoder: "
                             "set image_reconstruction=True (ladder rung M0)")
        if self.mask_target not in MASK_TARGETS:
            raise ValueError(f"mask_target={self.mask_target!r}: expected one of {MASK_TARGETS}")
        if self.loss_reduction not in LOSS_REDUCTIONS:
            raise ValueError(f"loss_reduction={self.loss_reduction!r}: expected one of {LOSS_REDUCTIONS}")
        if self.centering_box_only and self.centering_keypoints_only:
            raise ValueError("centering_box_only and centering_keypoints_only are both True: Eq. 14 would move nothing; set one")
        if self.sigma_start < 0 or (self.sigma_start > 0 and self.sigma_anneal_iters <= 0):
            raise ValueError(f"sigma_start={self.sigma_start}, sigma_anneal_iters={self.sigma_anneal_iters}: "
                             f"sigma_start must be 0 (off) or > 0 with sigma_anneal_iters > 0")
        if self.w_box_prior < 0 or not 0 < self.box_prior_threshold < 1 or self.box_prior_margin <= 0:
            raise ValueError(f"box prior: expected w_box_prior >= 0, 0 < box_prior_threshold < 1 and "
                             f"box_prior_margin > 0, got {self.w_box_prior}, {self.box_prior_threshold}, {self.box_prior_margin}")
        check_cleanup(self.foreground_cleanup, "foreground_cleanup")
        check_shadow_chroma(self.shadow_chroma, "shadow_chroma")
        if self.amp not in AMP_MODES:
            raise ValueError(f"amp={self.amp!r}: expected one of {AMP_MODES} ('auto' picks bf16 where the device has it)")
        if self.perceptual_fallback not in ("random", "off"):
            raise ValueError(f"perceptual_fallback={self.perceptual_fallback!r}: expected 'random' or 'off'")
        if len(set(self.views)) != len(self.views) or any(v < 0 for v in self.views):
            # a repeated view would triangulate one camera with itself; a negative one would silently
            # pick a camera from the end (Python indexing)
            raise ValueError(f"views={self.views}: expected distinct camera indices >= 0, e.g. views=0,1,2,3")
        if len(self.views) < 2 and not self.reconstruction_only:
            raise ValueError(f"views={self.views}: triangulation needs at least 2 views")
        if len(self.decoder_channels) != 4:
            raise ValueError(f"decoder_channels={self.decoder_channels}: expected 4 widths (P/8, P/4, P/2, P)")
        for name in ("log_every", "ckpt_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}: expected a number of steps >= 1 "
                                 f"(a large value, e.g. {name}=1000000, makes it rare)")
        if self.n_keypoints < 1 or self.batch_size < 1 or self.max_iters < 0:
            raise ValueError("n_keypoints and batch_size must be >= 1 and max_iters >= 0")
        return self

    # --- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Config":
        """Inverse of :meth:`to_dict`; unknown keys raise (a typo must not pass silently). A field
        that was removed (:data:`REMOVED_FIELDS`) is dropped when it holds the value that made it a
        no-op; any other value raises, since this code can no longer reproduce that run."""
        d = dict(d)
        for name, neutral in REMOVED_FIELDS.items():
            if name in d:
                if d[name] != neutral:
                    raise ValueError(f"{name}={d[name]!r}: this field was removed (it moved nothing; docs/recipe.md keeps "
                                     f"its runs); only {neutral!r} can be loaded: use an older kp3d for this run")
                del d[name]
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown Config fields {sorted(unknown)}; known fields: {sorted(known)}")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def replace(self, **overrides: Any) -> "Config":
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **overrides)


def parse_override(cfg_cls_field: str, text: str) -> Any:
    """Parse ``text`` (from ``--set key=value``) into the type of the Config field ``cfg_cls_field``."""
    f = {f.name: f for f in fields(Config)}.get(cfg_cls_field)
    if f is None:
        raise ValueError(f"--set {cfg_cls_field}=...: no such Config field; known: {sorted(x.name for x in fields(Config))}")
    default = f.default
    if isinstance(default, bool):
        low = text.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"--set {cfg_cls_field}={text}: expected true/false")
    if isinstance(default, int):
        return int(float(text)) if "e" in text.lower() else int(text)
    if isinstance(default, float):
        return float(text)
    if isinstance(default, tuple):
        parts = [p for p in text.replace("(", "").replace(")", "").split(",") if p.strip()]
        return tuple(int(p) for p in parts)
    return text


def parse_overrides(items: list[str]) -> dict:
    """``--set KEY=VALUE`` items -> {field: value typed as the Config field} (a bad item raises)."""
    overrides = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE, e.g. --set max_iters=2000")
        key, value = item.split("=", 1)
        try:
            overrides[key.strip()] = parse_override(key.strip(), value)
        except ValueError as e:
            raise ValueError(f"{e}" if "--set" in str(e) else f"--set {item}: {e}") from None
    return overrides
