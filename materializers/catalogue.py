"""Stores a `Catalogue` as JSON; its content hash lets unchanged schemas keep later steps cached.

Left out: parsing of source formats (that is `toolmodal.ingest`); the JSON is `Catalogue.to_json`.
"""

from __future__ import annotations

import html
import os
from collections import Counter
from typing import Any, ClassVar

from zenml.enums import ArtifactType, VisualizationType
from zenml.io import fileio
from zenml.materializers.base_materializer import BaseMaterializer

from toolmodal.schema import Catalogue

FILENAME = "catalogue.json"


class CatalogueMaterializer(BaseMaterializer):
    """JSON file + an HTML table of the tools by category."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (Catalogue,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA

    def load(self, data_type: type[Any]) -> Catalogue:
        """Read the catalogue back from the artifact store."""
        with fileio.open(os.path.join(self.uri, FILENAME), "r") as f:
            return Catalogue.from_json(f.read())

    def save(self, data: Catalogue) -> None:
        """Write the catalogue (sources included) as JSON."""
        with fileio.open(os.path.join(self.uri, FILENAME), "w") as f:
            f.write(data.to_json())

    def compute_content_hash(self, data: Catalogue) -> str:
        """The catalogue's own content hash (tool content only, order-independent)."""
        return data.content_hash()

    def extract_metadata(self, data: Catalogue) -> dict[str, Any]:
        """Tool and category counts, plus the hash `toolmodal watch` compares."""
        return {"n_tools": len(data.tools), "n_categories": len(data.categories),
                "tools_per_category": dict(Counter(t.category for t in data.tools)),
                "catalogue_hash": data.content_hash()}

    def save_visualizations(self, data: Catalogue) -> dict[str, VisualizationType]:
        """One HTML table: category, tool, parameter count, description."""
        rows = "".join(
            f"<tr><td>{html.escape(t.category)}</td><td><code>{html.escape(t.name)}</code></td>"
            f"<td>{len(t.parameters)}</td><td>{html.escape(t.description[:160])}</td></tr>"
            for t in sorted(data.tools, key=lambda t: (t.category, t.name)))
        page = (f"<h3>{len(data.tools)} tools in {len(data.categories)} categories</h3>"
                "<table><tr><th>category</th><th>tool</th><th>params</th><th>description</th>"
                f"</tr>{rows}</table>")
        path = os.path.join(self.uri, "catalogue.html")
        with fileio.open(path, "w") as f:
            f.write(page)
        return {path: VisualizationType.HTML}
