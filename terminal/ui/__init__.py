"""Kivy UI: renders flow step results, one screen class per result kind."""
