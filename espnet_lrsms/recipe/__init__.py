"""The Python side of the recipes' stages (egs2/TEMPLATE/asr1/asr.sh calls these through bin/)."""
