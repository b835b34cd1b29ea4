"""The seed README's import path for the EfficientNetV2 weight mapper, kept so its examples run as written::

    from deepvision.models.classification.efficientnet import efficientnet_weight_mapper

The family itself lives in :mod:`deepvision.models.classification.efficientnetv2`.
"""

from deepvision.models.classification.efficientnetv2 import weight_mapper as efficientnet_weight_mapper

__all__ = ["efficientnet_weight_mapper"]
