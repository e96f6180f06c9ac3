"""Where a profile departs from the paper, why, and the figure that earned it (notebook 04's table).

Each entry of :data:`DEVIATIONS` names one component (one or more :class:`kp3d.config.Config`
fields), says why the CPU profile departs from the paper's value there, and gives the measured
figure and the section of ``docs/recipe.md`` that holds its runs. :func:`profile_table` lists, for
a profile, every component whose fields differ from the paper's (``paper-h36m``), with both values.
A field that differs and has no entry is an error, so the table cannot fall behind the profiles
(``tests/test_deviations.py``).

Example:
    >>> rows = profile_table("cpu-demo")
    >>> next(r for r in rows if r["component"] == "mask target")["profile"]
    'mask_target=img-bg-mask'
"""
from __future__ import annotations

from dataclasses import dataclass, fields

from kp3d.config import Config
from kp3d.profiles import get_config


@dataclass(frozen=True)
class Deviation:
    """One component where a profile may depart from the paper."""

    component: str  # in the paper's words
    fields: tuple[str, ...]  # the Config fields that set it
    why: str  # one line
    evidence: str  # the figure that earned it, and the record's section


DEVIATIONS: tuple[Deviation, ...] = (
    Deviation("sizes and schedule", ("image_size", "patch_size", "n_keypoints", "batch_size", "encoder", "detector",
                                     "latent_dim", "decoder_channels", "decoder_convs_per_block", "max_iters"),
              "about 30 minutes on one CPU core instead of 200,000 GPU steps",
              "recipe 'Common settings'; 32 keypoints and 128 px patches moved nothing on a GPU "
              "(recipe 'Does the paper's size help?')"),
    Deviation("learning rates", ("lr", "lr_detector", "lr_image_decoder"),
              "a 3,000-step schedule; the paper's ratios kept (detector and image decoder slower)",
              "recipe 'Why did the image decoder's mask collapse?'"),
    Deviation("reconstruction warm-up and ramp", ("warmup_iters", "keypoint_ramp_iters"),
              "the keypoint losses start on a patch that already shows the person",
              "recipe 'Why did the image decoder's mask collapse?': without it the mask M_p collapsed within 200 steps"),
    Deviation("auxiliary patch loss during the warm-up", ("w_patch", "patch_loss_warmup_only"),
              "the blend's mask can close before the decoder has learnt anything",
              "recipe 'Why did the image decoder's mask collapse?' (failure mode 4); kept after the warm-up it grew the box "
              "0.76 -> 0.96 and held M_p at IoU 0.50 "
              "(validation render, rung Ma0) against 0.66 without it (Ma)"),
    Deviation("Gaussians and soft-argmax", ("sigma", "softmax_temperature", "sigma_start", "sigma_anneal_iters"),
              "a 64 px patch: sigma 0.1 = 3.2 px; a wide start lets far keypoints feel the mask",
              "recipe 'The box prior': the keypoints reach the person only with the anneal"),
    Deviation("mask decoder's last layer near zero", ("mask_decoder_last_init_std",),
              "the keypoints' mask starts empty instead of a strong positive response",
              "recipe 'Why did the image decoder's mask collapse?': the keypoints' mask started full"),
    Deviation("mask loss weight", ("w_mask",), "mean-reduced norms change the balance of Eq. 15",
              "recipe 'Common settings'"),
    Deviation("perceptual term", ("use_perceptual_loss",), "no ImageNet weights can be downloaded here",
              "recipe 'Does the schedule limit M_p?': with random features M_p's IoU falls, 0.607 against 0.660 "
              "(rung Ma, validation render); the full model's probes not measured with it"),
    Deviation("gradients kept apart", ("keypoint_box_grad", "keypoint_encoder_grad"),
              "the keypoint losses reached the box and the encoder and made M_p shrink",
              "recipe 'Why did the image decoder's mask collapse?': M_p collapsed within 200 steps of the keypoint "
              "losses starting"),
    Deviation("box prior from |I - B|", ("w_box_prior",),
              "from reconstruction alone the CPU detector never zoomed in on the person",
              "recipe 'The box prior': box 0.75 -> 0.85 of the frame without it, the person ~4% of the patch"),
    Deviation("detector reads the whole map", ("detector_pool", "detector_downsample"),
              "a globally pooled map barely says where the person is",
              "recipe 'Does the detector see where the person is?': centre 12 px off with 'avg'"),
    Deviation("detector input", ("detector_input",),
              "the RGB detector shrank its box on new subjects (0.88-0.91x the box prior's)",
              "the ladder: soft |I - B| holds 1.00x; MLP 0.61 / 0.65x over two seeds against 0.64 / 0.79x"),
    Deviation("keypoint head input", ("keypoint_input",),
              "keypoints decoded from the latent carried no more than the mean pose",
              "the ladder: latent 1.26x ridge; the soft |I - B| patch 0.80x (R3), MLP 0.84x -> 0.64x"),
    Deviation("mask target", ("mask_target",),
              "the decoder's mask M_p is too coarse at this size (IoU 0.67 on the validation render, its "
              "GT-fitted ceiling 0.80) and its silhouettes carry no pose (MLP 0.90x)",
              "Table 6 on the validation render, seeds 0 and 1: MLP 0.53x with this target, 0.61x with M_p, "
              "76% of the keypoints on the person with M_p ('The paper's own mask M_p')"),
    Deviation("|I - B| threshold, cleanup, shadow test", ("box_prior_threshold", "foreground_cleanup", "shadow_chroma"),
              "the mask the keypoints rebuild holds the low-contrast limbs and not the floor shadow",
              "re-checked by training on the validation render, seeds 0 / 1: the profile MLP 0.52 / 0.53x; without the "
              "cleanup 0.60 / 0.61x; at 0.04 0.51 / 0.64x; the shadow test keeps 86% of the keypoints on the person "
              "(77% without), at a cost: MLP 0.47 / 0.42x without it (recipe 'Validation protocol')"),
    Deviation("centering term", ("use_centering_loss", "centering_box_only"),
              "it pulled the keypoints off the person", "the ladder: 66.7% -> 86.5% on the GT mask without it"),
    Deviation("run plumbing", ("num_workers", "log_every", "ckpt_every"), "CPU data loading and logging",
              "does not change what is learnt"),
)


def _fmt(cfg: Config, names: tuple[str, ...], only: set[str]) -> str:
    return ", ".join(f"{n}={getattr(cfg, n)}" for n in names if n in only)


def profile_table(profile: str, reference: str = "paper-h36m") -> list[dict[str, str]]:
    """The components where ``profile`` departs from ``reference``: one dict per :data:`DEVIATIONS`
    entry with ``component``, ``paper`` (the reference's values of the fields that differ),
    ``profile`` (the profile's), ``why`` and ``evidence``. Raises when a field differs that no entry
    names (the table would be incomplete)."""
    ref, cfg = get_config(reference), get_config(profile)
    ignore = {"profile"}
    differ = {f.name for f in fields(Config) if f.name not in ignore and getattr(ref, f.name) != getattr(cfg, f.name)}
    covered = {n for d in DEVIATIONS for n in d.fields}
    missing = sorted(differ - covered)
    if missing:
        raise ValueError(f"profile {profile!r} departs from {reference!r} in {missing}, which kp3d.deviations.DEVIATIONS "
                         f"does not explain: add an entry saying why, with its figure")
    return [{"component": d.component, "paper": _fmt(ref, d.fields, differ), "profile": _fmt(cfg, d.fields, differ),
             "why": d.why, "evidence": d.evidence}
            for d in DEVIATIONS if differ & set(d.fields)]


def format_profile_table(profile: str) -> str:
    """:func:`profile_table` as a Markdown table (notebook 04, REPORT.md)."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|")  # |I - B| inside a table cell

    lines = [f"| component | paper (paper-h36m) | {profile} | why | the figure that earned it |", "|---|---|---|---|---|"]
    for r in profile_table(profile):
        lines.append("| " + " | ".join(cell(r[k]) for k in ("component", "paper", "profile", "why", "evidence")) + " |")
    return "\n".join(lines)
