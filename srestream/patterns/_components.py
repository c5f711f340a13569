"""Component registrations (see srestream._registry)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any

import msgspec

from .._component import BuildContext, Outputs, StageConfig
from .._registry import register
from ._masking import Tokenizer
from ._miner import TemplateMiner
from ._stage import mine_templates

__all__ = ["TemplateMinerLogic", "TemplateMinerStage"]


class TemplateMinerLogic:
    """The running ``template_miner`` stage: callable on its upstream, with
    the miner's state as its checkpoint (``snapshot``/``restore``)."""

    def __init__(
        self,
        miner: TemplateMiner,
        outputs: Outputs,
        template_attribute: str = "",
        template_updates: bool = False,
    ) -> None:
        self.miner = miner
        self.outputs = outputs
        self.template_attribute = template_attribute
        self.template_updates = template_updates

    def __call__(self, upstream: AsyncIterator[Sequence[Any]]) -> AsyncIterator[list[Any]]:
        return mine_templates(
            upstream,
            miner=self.miner,
            template_attribute=self.template_attribute,
            template_updates=self.template_updates,
            outputs=self.outputs,
        )

    def snapshot(self) -> dict[str, Any]:
        return self.miner.snapshot()

    def statistics(self) -> dict[str, int]:
        return self.miner.statistics()

    def restore(self, state: dict[str, Any]) -> None:
        self.miner.restore(state)


@register("Mine log templates online (Drain-like); sets template_id, new templates to .templates.")
class TemplateMinerStage(StageConfig, frozen=True, kw_only=True, tag="template_miner"):
    """Options (one generic configuration serves every log source):

    * ``max_clusters``: live templates kept; the least recently seen is evicted.
    * ``similarity_threshold``: share of constant tokens a line must share with
      a template to join it (0..1).
    * ``tree_depth``: prefix-tree depth (root and token-count levels included).
    * ``max_children``: branches per tree node before tokens share ``<*>``.
    * ``max_differences``: constant tokens of a template a line may contradict
      and still join it (1: templates generalise one position at a time).
    * ``max_tokens``: tokens kept per message (long messages are cut).
    * ``template_attribute``: if set, also put the template text in ``attrs``.
    * ``template_updates``: also announce a template on ``templates`` each
      time it generalises (same id, ``updated: true``).
    """

    side_outputs = ("templates",)
    max_clusters: Annotated[int, msgspec.Meta(ge=1)] = 10_000
    similarity_threshold: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.5
    tree_depth: Annotated[int, msgspec.Meta(ge=3)] = 4
    max_children: Annotated[int, msgspec.Meta(ge=2)] = 100
    max_differences: Annotated[int, msgspec.Meta(ge=0)] = 1
    max_tokens: Annotated[int, msgspec.Meta(ge=1)] = 128
    template_attribute: str = ""
    template_updates: bool = False

    def build(self, ctx: BuildContext) -> TemplateMinerLogic:
        miner = TemplateMiner(
            similarity_threshold=self.similarity_threshold,
            depth=self.tree_depth,
            max_children=self.max_children,
            max_differences=self.max_differences,
            max_clusters=self.max_clusters,
            tokenizer=Tokenizer(max_tokens=self.max_tokens),
        )
        return TemplateMinerLogic(
            miner, ctx.outputs, self.template_attribute, self.template_updates
        )
