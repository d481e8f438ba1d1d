# Corpus roots, as in ESPnet's db.sh; an environment variable of the same name overrides each.
# LIBRISPEECH: the directory that holds LibriSpeech/ (train-clean-100/, dev-clean/, ...)
LIBRISPEECH=${LIBRISPEECH:-downloads}
# LRS3: the directory that holds pretrain/, trainval/ and test/
LRS3=${LRS3:-downloads/lrs3}
