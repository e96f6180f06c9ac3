"""The one training configuration of the unsupervised keypoint model, and its profiles.

:class:`Config` holds every knob of the model, the losses and the training loop. Its defaults are the
paper's values (Honari et al., Sec. 3.3 and S.1; profile ``paper-h36m``). Where the paper is silent
the field's comment says so and what was chosen. The other profiles change sizes, resolution, batch,
iterations and loss weights, plus the few stabilising choices that a small CPU model needs
(docs/recipe.md, runs H0-H2); each such field documents why it exists.

Units used by the fields:
- ``image_size`` / ``patch_size``: pixels (square views and patches);
- ``sigma``: the Gaussian's standard deviation in normalised [-1, 1] patch units, i.e.
  ``sigma * P / 2`` pixels (the paper's 0.02 is 1.28 px at P = 128; the CPU recipe's 0.1 is 3.2 px
  at P = 64), the convention of ``kp3d.geometry.gaussian_heatmaps``;
- boxes: ``(s_x, s_y, u_x, u_y)`` in normalised [-1, 1] image units (see ``kp3d.geometry``).

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
# their runs: w_concentration S3/N32c/MD8c, keypoint_encoder_grad_scale S2, keypoint_encoder
# "separate" S1b, encoder_pool "flatten" G2, mask_decoder_hidden MD8, box_prior_augment in the
# ladder's detector runs, mask_init_bias in the M_p rungs), with their neutral values: older
# checkpoints that carry them at these values still load.
REMOVED_FIELDS: dict[str, Any] = {"w_concentration": 0.0, "keypoint_encoder_grad_scale": 1.0, "keypoint_encoder": "shared",
                                  "encoder_pool": "avg", "mask_decoder_hidden": 1, "box_prior_augment": 0.0,
                                  "mask_init_bias": 0.0}


@dataclass
class Config:
    """Everything that defines a training run. Defaults = the paper (H36M) unless a comment says otherwise."""

    # --- run ---------------------------------------------------------------------------------
    profile: str = "paper-h36m"
    data: str = "synthetic"  # "synthetic[?seed=N]" | "h36m:/path" | "3dhp:/path" | "rig:/path" (data_utils.datasets)
    calibration: str = ""  # rig only: calibration file (TOML / OpenCV YAML or JSON / H36M JSON);
    #   "" = the calibration.{toml,yml,yaml,json} inside the rig folder (docs/own_rig.md)
    seed: int = 0
    synthetic_frames: int = 0  # data="synthetic" only: procedural frames per subject; 0 = the profile's
    #   preset (cpu-demo 480, i.e. 2,400 training frames). Why it exists: docs/recipe.md ("What does supervision reach on this data set?") found
    #   the test error of a network trained with the 3D labels limited by the number of training
    #   frames (84-86 mm with 2,400); a larger set renders once (about 4x the time for 4x the frames).

    # --- sizes (paper S.1.1) -----------------------------------------------------------------
    n_keypoints: int = 32  # N; 48 for 3DHP
    views: tuple = (0, 1, 2, 3)  # indices into each sample's V axis; the paper uses 4 views (Table 5: 2/3/4)
    image_size: int = 500  # input views are image_size x image_size
    patch_size: int = 128  # crop resolution P; must be a multiple of 8 (the decoders start at P/8)
    detector: str = "resnet18"  # detector S backbone, on the image downsampled by detector_downsample
    detector_downsample: int = 4
    detector_input: str = "rgb"  # what S reads: "rgb" = the paper (the frame). NOT in the paper:
    #   "img-bg-soft" = the soft |I - B| (kp3d.losses.foreground_soft) repeated over 3 channels. Why:
    #   docs/recipe.md measured the RGB detector, fitted on five subjects, shrinking its box on the
    #   test subjects (0.88-0.91x the box prior's side); reading the soft |I - B| it holds (1.00x),
    #   and the full model's probes stop depending on the seed (two seeds: MLP 0.61 / 0.65x, ridge
    #   0.87 / 0.85x the mean pose, against 0.64 / 0.79x and 0.80 / 1.21x with the RGB detector).
    detector_pool: str = "avg"  # "avg": the backbone's global average pool (a standard ResNet; paper
    #   silent). "flatten": the last feature map flattened into the box head. Why: a globally pooled
    #   map barely says WHERE the person is; docs/recipe.md measured the tiny CPU detector's centre
    #   12 patch px off the person with "avg" although its box prior target was within 5.
    encoder: str = "resnet50"  # encoder E backbone ("tiny" is a 4-layer CNN for tests)
    latent_dim: int = 729  # size of Xi: 729 on H36M, 1029 on 3DHP (S.1.1); pooled features -> linear
    decoder_channels: tuple = (256, 128, 64, 32)  # Table S1: 256x(P/8)^2 -> 128 -> 64 -> 32 channels
    decoder_convs_per_block: int = 3  # Table S1: three conv3x3+ReLU per upsampling block
    decoder_dropout: float = 0.1  # paper: "linear with dropout", rate unstated; chosen 0.1

    # --- keypoints and masks --------------------------------------------------------------------
    sigma: float = 0.02  # Gaussian std of the mask decoder and coverage, [-1, 1] patch units
    sigma_start: float = 0.0  # 0 = sigma throughout (the paper). > 0: the keypoint losses start with
    #   this sigma and anneal it geometrically to ``sigma`` over ``sigma_anneal_iters`` steps. Why: the
    #   mask and coverage gradients reach a keypoint only through its Gaussian, so keypoints more than
    #   ~2 sigma from the person get none at first (docs/recipe.md); a wide start lets them all feel it.
    sigma_anneal_iters: int = 0  # steps after the warm-up over which sigma_start -> sigma
    softmax_temperature: float = 1.0  # soft-argmax over C_n / T; the paper uses a plain softmax (T=1)
    mask_decoder_last_init_std: float = 0.0  # 0 = PyTorch default init (paper silent). >0: the last
    #   conv of the mask decoder starts with N(0, std) weights and zero bias, so the decoder starts
    #   near an empty mask instead of a strong positive response (docs/recipe.md, H0).
    box_init_scale: float = 0.75  # detector's initial box: centred, s_x = s_y = this (paper silent;
    #   a spatial transformer usually starts at identity; 0.75 keeps the person inside with margin)
    box_min_scale: float = 0.1  # s is squashed into [box_min_scale, 1] so the box never degenerates

    mask_oracle: bool = False  # diagnosis only, never in a profile (ladder rung M0): M_p is also trained
    #   against the ground-truth mask (binary cross-entropy): the IoU the decoder reaches at this size
    #   and number of steps with a perfect target, the ceiling of the unsupervised M_p.

    # --- losses (Eq. 10-15) --------------------------------------------------------------------
    use_perceptual_loss: bool = True  # beta term of Eq. 10
    use_mask_loss: bool = True  # Eq. 11
    use_coverage_loss: bool = True  # Eq. 13
    use_centering_loss: bool = True  # Eq. 14
    reconstruction_only: bool = False  # Table 4 row 1: train only Eq. 10 (keypoint path untrained)
    w_patch: float = 0.0  # NOT in the paper: weight of an auxiliary ||p - D_p||^2 on the decoded patch.
    #   Without it the blend mask M can fall to 0 before the decoder has learnt anything (the median
    #   background already explains most pixels); then D_p gets no gradient and M stays 0
    #   (docs/recipe.md, H1: seen on the synthetic data in the first 250 steps). With it the
    #   decoder keeps learning the patch and M opens where D_p explains the image better than B.
    patch_loss_warmup_only: bool = False  # True: w_patch applies only in the first warmup_iters steps,
    #   in a reconstruction-only run too. docs/recipe.md r5: kept on afterwards, the auxiliary term
    #   rewards ever larger boxes (box 0.76 -> 0.96), and it holds M_p near 0.5 over the background
    #   (IoU 0.50 against 0.66 on the validation render: "The paper's own mask M_p", rung Ma).
    w_box_prior: float = 0.0  # NOT in the paper: weight of an L1 pull of the detector's box towards a
    #   square box around |I - B| > box_prior_threshold (kp3d.losses.foreground_box), i.e. towards
    #   the person as median-background subtraction sees it. docs/recipe.md: from reconstruction alone
    #   the tiny CPU detector never zoomed in (box 0.75 -> 0.85 of the frame, the person ~4% of the
    #   patch), so the mask decoder had almost nothing to rebuild and the keypoints never found the
    #   person. No labels are used: the background is the method's own input.
    box_prior_threshold: float = 0.1  # |I - B| (mean over RGB, [0, 1] images) counted as foreground,
    #   wherever |I - B| is used (box prior, fixed crop, soft keypoint/detector input, img-bg-mask
    #   target). cpu-demo: 0.05 with foreground_cleanup=3 (docs/recipe.md, "The ladder"): the keypoints
    #   must rebuild the low-contrast limbs too; full model MLP 0.57x -> 0.49x / 0.45x, ridge 0.80x ->
    #   0.75x / 0.71x the mean pose (seeds 0 / 1), but only 53% / 79% of keypoints on the GT mask:
    #   a fifth of that mask is the floor shadow (see shadow_chroma).
    box_prior_margin: float = 1.15  # box side = this x the larger extent of the foreground
    foreground_cleanup: int = 0  # NOT in the paper: 0 = |I - B| > box_prior_threshold as it is; an odd
    #   k >= 3 closes then opens that mask with a k x k square (kp3d.losses.foreground_mask) wherever it
    #   is used (box prior, fixed crop, keypoint input, img-bg-mask target). Why: on the synthetic set
    #   the raw mask has IoU 0.73 with the GT mask, holes where clothing matches the background
    #   (recall 0.81); k = 3 fills them (recall 0.88, IoU 0.77) and cut rung R1's ridge probe from
    #   0.99x to 0.90x the mean pose (docs/recipe.md, "The ladder"). On the full model at threshold
    #   0.1 it moved nothing; cpu-demo uses it with threshold 0.05 (0.05 alone was not measured).
    shadow_chroma: float = 0.0  # NOT in the paper: 0 = off; > 0 = wherever |I - B| is used, a pixel darker
    #   than the background (brightness 0.3-1x) whose chromaticity lies within this L1 distance of the
    #   background's is the floor in the person's shadow, not the person (kp3d.losses.shadow_mask).
    #   cpu-demo: 0.08. On the synthetic test views |I - B| > 0.05 (cleaned) is 80% person, 96% with it
    #   (recall of the GT mask 0.96 -> 0.92); the full model's keypoints on the GT mask 53% / 79% ->
    #   92% / 91% (seeds 0 / 1), MLP 0.49x / 0.45x -> 0.49x / 0.54x (docs/recipe.md, "The ladder").
    w_perceptual: float = 2.0  # beta
    w_mask: float = 0.5  # gamma (5.0 on 3DHP)
    w_coverage: float = 0.01  # delta
    w_centering: float = 1.0  # eta
    mask_target: str = "predicted"  # Table 6: "predicted" (M_p, the paper's default), "gt", "img-bg"
    #   (|I - B| scaled by its maximum); "img-bg-mask": |I - B| > box_prior_threshold, a binary mask
    #   (cleaned and freed of the floor shadow as foreground_cleanup and shadow_chroma say)
    detach_mask_target: bool = True  # paper silent. True: Eq. 11/13 do not push the image decoder's
    #   mask M_p towards the keypoints' mask; M_p is learnt from reconstruction alone (docs/recipe.md,
    #   H0-H2: the mask shrinks when keypoint losses reach it).
    centering_box_only: bool = False  # True: Eq. 14 moves only the box (keypoints detached). The
    #   paper lets it reach both; the CPU recipe needed box-only because an L1 term on the keypoints
    #   gives a constant-size gradient that drowns weak signals (docs/recipe.md, H0).
    centering_keypoints_only: bool = False  # True: Eq. 14 moves only the keypoints (box detached):
    #   the box learns from reconstruction alone. docs/recipe.md: box-only centering on the synthetic
    #   set dragged the box after the still-random keypoints (scale 0.76 -> 0.95 within 100 steps)
    #   and the image decoder's mask, no longer aligned with the crop, collapsed.
    keypoint_box_grad: bool = True  # False: the keypoint path uses the box detached (K_p of Eq. 6 and
    #   the un-cropping of keypoints), so Eq. 11/13 move the detector only through the crop's pixels
    #   (the shared encoder), not through the geometry; the box learns from reconstruction and
    #   centering. The paper back-propagates everywhere (True); docs/recipe.md (H2) saw the mask
    #   loss push the detector to larger boxes and the decoder's mask shrink.
    keypoint_encoder_grad: bool = True  # False: the keypoint head reads the latent detached, so the
    #   keypoint losses (Eq. 11/13/14) train the keypoint head and mask decoder but never the shared
    #   encoder; Xi (and the image decoder's mask M_p) is learnt from reconstruction alone. The paper
    #   back-propagates into the encoder (True). docs/recipe.md: with True, the cpu-demo run's mask
    #   M_p collapsed within 200 steps of the keypoint losses starting (failure mode 4).
    # --- the ladder from the geometric bottleneck to the full model (docs/recipe.md, "The ladder") ---
    keypoint_input: str = "latent"  # what the keypoint head psi reads. "latent" = the paper: psi decodes
    #   the maps from Xi (Table S1). Otherwise psi is a small U-Net on the patch itself
    #   (kp3d.networks.PatchKeypointHead) reading "gt-mask" (the ground-truth mask, an oracle for
    #   diagnosis only), "img-bg" (|I - B| > box_prior_threshold, no labels), "img-bg-soft" (|I - B| /
    #   box_prior_threshold clipped to 1, kp3d.losses.foreground_soft: the pixels under the
    #   threshold stay grey instead of holes; rung R1's MLP probe 0.66x -> 0.58x, ridge 0.91x -> 0.86x
    #   the mean pose, seed 1 0.67x -> 0.54x, 1.01x -> 0.80x; the full model's (cpu-demo) MLP
    #   0.84x -> 0.64x, ridge 0.97x -> 0.80x; docs/recipe.md), "rgb" (the patch) or
    #   "pred-mask" (the image decoder's mask M_p, detached). Why: docs/recipe.md measured that 16
    #   keypoints read from a mask patch and forced to rebuild it carry the pose (rung R0), while
    #   keypoints decoded from Xi carry no more than the mean pose.
    crop_source: str = "detector"  # where the patch comes from. "detector" = the paper's spatial
    #   transformer S. "gt-mask" (oracle) / "img-bg": a fixed square box around the ground-truth mask
    #   / around |I - B| > box_prior_threshold (kp3d.losses.foreground_box); the detector is unused.
    #   Why: lets the keypoint path be measured without a learned crop (rungs R0-R2).
    image_reconstruction: bool = True  # False: no image decoder pass and no Eq. 10 (the geometric
    #   bottleneck alone, rungs R0/R1); needs a fixed crop, a keypoint input that is not the
    #   latent or M_p, and a mask target that is not M_p.
    loss_reduction: str = "mean"  # norms of Eq. 10/11 averaged ("mean") or summed ("sum") over pixels
    #   (then averaged over the batch). The paper does not say; with "mean" delta = 0.01 and eta = 1
    #   balance reconstruction (docs/recipe.md, H0; summing changes the balance by 10^3-10^5).
    perceptual_weights: str = ""  # path to ImageNet ResNet18 weights; "" = torchvision's hub cache
    perceptual_fallback: str = "random"  # no weights file: "random" = a fixed ResNet18 initialised
    #   with seed 0 (random features still measure structure), or "off" = drop the term. Logged loudly.

    # --- optimisation (S.1.3) ------------------------------------------------------------------
    max_iters: int = 200_000
    batch_size: int = 32  # samples (each with len(views) views) per step, over ALL processes
    lr: float = 1e-4
    lr_detector: float = 2e-5
    lr_image_decoder: float = 2e-5
    weight_decay: float = 0.0
    grad_clip: float = 0.0  # 0 = off (paper silent)
    warmup_iters: int = 0  # reconstruction-only steps before the keypoint losses start (paper: none)
    keypoint_ramp_iters: int = 0  # then ramp the keypoint-loss weights linearly over this many steps

    # --- speed ---------------------------------------------------------------------------------
    amp: str = "auto"  # "auto": bf16 autocast where the device computes bf16 natively (CUDA with bf16, a
    #   CPU with AVX512-BF16 or AMX), float32 elsewhere: on an AVX2 CPU emulated bf16 made a cpu-demo step
    #   5-14x slower (bench/train_throughput.py); "bf16" forces autocast, "none" float32 (kp3d.train.resolve_amp)
    channels_last: bool = True
    num_workers: int = 4

    # --- logging and checkpoints ---------------------------------------------------------------
    log_every: int = 50
    ckpt_every: int = 5000
    keep_checkpoints: int = 0  # 0 = keep every step_XXXXXXX.pt (notebook 04 shows their progress)

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
