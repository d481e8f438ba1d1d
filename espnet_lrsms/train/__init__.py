"""The paper's training recipe as ESPnet components: LR scheduler and adaptive time masking."""
