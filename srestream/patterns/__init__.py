"""srestream.patterns: online log template mining (SPEC §3.4).

"The same error" is one template id across services and time: the
``template_miner`` stage labels every log record, and announces each new
template on its ``templates`` side output.
"""

from ._components import TemplateMinerLogic, TemplateMinerStage
from ._masking import Tokenizer, mask_token
from ._miner import Cluster, TemplateMiner, template_id_for
from ._records import TemplateRecord
from ._stage import label_batch, mine_templates

__all__ = [
    "Cluster",
    "TemplateMiner",
    "TemplateMinerLogic",
    "TemplateMinerStage",
    "TemplateRecord",
    "Tokenizer",
    "label_batch",
    "mask_token",
    "mine_templates",
    "template_id_for",
]
