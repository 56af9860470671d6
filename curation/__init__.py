"""curation: reasoning- vs knowledge-heavy splits of medical QA benchmarks.

Pure logic lives in this package; each outside service has one adapter module
(`store` for DuckDB, `labelstudio` for Label Studio, `hub` for the Hugging Face Hub,
`model` for torch/transformers). The CLI (`cli`) and the Streamlit app (`ui/`) are thin.
"""

__version__ = "0.1.0"
