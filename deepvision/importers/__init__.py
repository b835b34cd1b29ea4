"""Importers and exporters of foreign weight formats (keras.applications, timm): the only place where mapping tables live."""
