"""The app's pages (run by Streamlit as scripts; a package so the layer contracts see them)."""
