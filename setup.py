"""Package layout that pyproject.toml cannot express on its own.

The schema files live in the top-level ``schemas/`` folder (the source of truth,
written by ``tools/generate_schemas.py``); they ship inside the wheel as the data
package ``interchange.schemas``, so an installed ``interchange`` finds them with
``importlib.resources``. Everything else is configured in pyproject.toml.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["deepvision*", "interchange*"]), "interchange.schemas"],
    package_dir={"interchange.schemas": "schemas"},
)
