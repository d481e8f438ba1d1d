#!/usr/bin/env bash
# shellcheck disable=SC2034  # options are also read by name (${!name}: parse_options.sh, run_stage)
# The shared ASR recipe of espnet-lrsms: ESPnet's egs2/TEMPLATE/asr1/asr.sh, with its stage numbers and option
# names, run from this repository alone (no Kaldi, no SCTK, no ESPnet checkout). A corpus' run.sh sets the
# defaults and calls this script; every option below can be given as --name value (or --name-with-hyphens value).
#
#   1. data prep           data/<set>/{wav.scp,text,utt2spk,spk2utt}: the recipe's own local/data.sh (ESPnet's; run
#                          with --local_data_opts), which knows its corpus; this script knows none
#   2. speed perturbation  with --speed_perturb_factors (e.g. "0.9 1.0 1.1"): data/<train_set>_sp, which the
#                          later stages train on (tags and stats dir get _sp, as ESPnet's); any wav.scp stage 3
#                          reads (commands, arks, files; segments), ids sp<f>-<id> as ESPnet's
#   3. format audio        ESPnet's --feats_type raw: every set's wav.scp entries (commands "... |", ark offsets,
#                          files; cut by data/<set>/segments) as --audio_format files at --fs -> <dumpdir>/raw/<set>
#                          (the training and validation sets: <dumpdir>/raw/org/<set>), with utt2num_samples;
#                          mono files already at --fs are referenced, not copied. Stages 4-17 read <dumpdir>/raw
#   4. duration filter     ESPnet's --min_wav_duration/--max_wav_duration (0.1 and 20 s) on the training set
#                          (<train_set>_sp after stage 2) and the validation set, never the test sets:
#                          <dumpdir>/raw/org/<set> -> <dumpdir>/raw/<set>, the left-out utterances listed in its
#                          filtered.txt; a re-run (other bounds too) filters org/ again
#   5. token list          ESPnet's token list of the training text (--token_type): bpe, SentencePiece (--bpemode,
#                          --nbpe) -> <lang>_token_list/bpe_<bpemode><nbpe>/{bpe.model,tokens.txt}; char or word
#                          (of the text cleaned by --cleaner, --nlsyms_txt symbols whole) -> <lang>_token_list/<type>
#   6. LM text             the LM's training/validation text tokenized + shape files -> <expdir>/lm_stats_*
#   7. LM training         Transformer LM (ESPnet's LM task) on --lm_train_text [+ --lm_corpus] -> <expdir>/lm_<lm_tag>
#   8. LM perplexity       espnet2.bin.lm_calc_perplexity of that LM on each test set's text -> <lm_exp>/perplexity_<set>/ppl
#                          (and on --lm_test_text -> <lm_exp>/perplexity_lm_test_text/ppl)
#   9. LoRA adaptation     this project's stage, where ESPnet trains its n-gram LM: one adapted LM per
#                          --lora_config, on --lora_train_text -> <lm_exp>_lora_<name>
#  10. shape files         speech_shape / text_shape.<token_type> for ESPnet's batch samplers (ESPnet's "collect stats";
#                          from the audio headers); feats_stats.npz too, by ESPnet's collect-stats jobs (--nj,
#                          --train_cmd), only for global_mvn: a config with normalize: global_mvn (e.g. an fbank
#                          config; the paper's front end normalises each utterance itself) or --feats_normalize
#                          global_mvn (ESPnet's), which stage 11 then passes; --frontend_conf fs=<fs> in both
#  11. training            espnet2.bin.launch -> espnet_lrsms.bin.asr_train (resumes with --resume true);
#                          <asr_exp>/run.sh re-runs the command from stage 11
#  12. decoding            of --test_sets (and first --valid_set with --eval_valid_set true, as ESPnet; also in 13):
#                          espnet_lrsms.bin.asr_inference, --inference_nj jobs, n-best kept; with --use_lm true,
#                          shallow fusion with the LM of stage 7 (--inference_lm; or --inference_lm_exp, e.g. a
#                          LoRA-adapted LM of stage 9) at the decoding config's lm_weight, into
#                          <inference_tag> with ESPnet's _lm_<lm exp>_<inference_lm less .pth> in it
#  13. scoring             <asr_exp>/<inference_tag>/<set>/score_{wer,cer,ter}/{ref.trn,hyp.trn,result.txt} (TER
#                          in bpe.model's pieces, for bpe only; --cleaner, --hyp_cleaner, --nlsyms_txt as ESPnet's)
#                          + <asr_exp>/RESULTS.md (inference_tag: decode_asr_asr_model_valid.acc.ave, as ESPnet)
#  14. packing             with --skip_packing false (ESPnet's default true): espnet_lrsms.bin.pack (ESPnet's pack;
#                          meta.yaml names espnet_lrsms) of the model, bpe.model, RESULTS.md, <asr_exp>/images and,
#                          with --use_lm true, the fused LM -> <asr_exp>/<asr_exp's name>_<model less .pth>.zip
#  15. HF upload           with --skip_upload_hf false: the pack as a Hugging Face model repository (model card
#                          included) -> <asr_exp>/hf_repo, pushed to --hf_repo when given (ESPnet 202511 has no
#                          stage 16)
#  17. n-best rescoring    this project's: AM + λ·LM + β·words, (λ, β) tuned on --lm_tune_set, every LM, every
#                          test set; scored as stage 13 (RESULTS.md: before and after rows) + NPRR (robustness.txt)
# Stages 6-9 and 17 run only with --lm_config (see docs/lm_rescoring.md). As in ESPnet, --skip_data_prep true
# leaves out stages 1-5, --skip_train 2, 4-11, --skip_eval 12-13 (here also 17), --skip_packing 14 (true by
# default) and --skip_upload_hf 15 (true by default); --skip_stages "5 10" any others. ESPnet 202511's other
# options are accepted or, where this recipe has no use for them, refused with the reason (docs/recipes.md,
# "ESPnet options"). Job runners: the recipe's cmd.sh (local, or SLURM).
#
# Every stage writes to a temporary name and renames, so an interrupted stage leaves nothing that a
# later stage would take as finished; re-running a stage redoes it.
set -euo pipefail

here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)  # egs2/TEMPLATE/asr1, also via a symlink
# shellcheck source=utils/recipe_preamble.sh
. "${here}/utils/recipe_preamble.sh"  # run_args, log, path.sh, the general options, cmd.sh (shared with avsr.sh)
path_list() {  # <array name> <value>: a list option's files; the whole value when it names one (a path with spaces)
    local -n _list=$1
    if [[ -f "$2" ]]; then _list=("$2"); else read -r -a _list <<< "$2"; fi
}

# General: asr.sh's own
eval_valid_set=false     # stages 12-13 also decode and score --valid_set (ESPnet's)

# Data
local_data_opts=""       # stage 1: the options given to the recipe's local/data.sh (ESPnet's), split into words
train_set=""
valid_set=""
test_sets=""
on_error=stop            # stop | skip: what data prep does with a broken utterance
datadir=data
dumpdir=""               # stage 3's output (ESPnet's --dumpdir): <dumpdir>/raw/<set>, which stages 4-17 read;
                         # default: dump beside --datadir (ESPnet's dump/ for data/)
feats_type=raw           # stage 3: ESPnet's option; raw only (the front end reads the waveform)
audio_format=flac        # stage 3: flac | wav, the format of the files it writes (ESPnet's default flac)
fs=16k                   # the sampling rate (16k or 16000, ESPnet's forms) of the dump (stages 3-4) and of the front
                         # end: stages 10-11 pass --frontend_conf fs=<fs> (ESPnet's), decoding reads it from the config
speed_perturb_factors="" # stage 2, e.g. "0.9 1.0 1.1" (ESPnet's); empty: no speed perturbation
min_wav_duration=0.1     # stage 4: training and validation utterances not longer than this (seconds) are left out
max_wav_duration=20.0    # stage 4: ... and those not shorter than this (ESPnet's defaults; written 20.0: any
                         # number, not only whole ones)

# Tokenizer (ESPnet's options and defaults, but nbpe)
token_type=bpe           # bpe | char | word (ESPnet's phn needs a g2p, which this recipe has not)
nbpe=5000
bpemode=unigram          # SentencePiece model type: unigram | bpe
bpe_nlsyms=""            # bpe: symbols kept whole as SentencePiece user-defined symbols (a file or a comma list)
oov="<unk>"              # the token list's out-of-vocabulary symbol (index 1)
blank="<blank>"          # CTC blank (index 0)
sos_eos="<sos/eos>"      # sentence start/end (the last index)
lang=en
bpe_train_text=""        # stage 5, bpe: the Kaldi text SentencePiece learns from (ESPnet's); default: the training
                         # set's text

# Training
expdir=exp
feats_normalize=""       # ESPnet's: global_mvn trains with --normalize global_mvn and stage 10's statistics;
                         # utterance_mvn, none: nothing passed, the config's normalize: decides (as in ESPnet).
                         # ESPnet's default is global_mvn; here empty (the config decides): the paper's front end
                         # z-normalises each utterance itself (normalize: null)
asr_config=""
asr_tag=""
asr_args=""
asr_stats_dir=""
asr_exp=""               # the experiment directory (ESPnet's); default: <expdir>/asr_<asr_tag> (--asr_tag unused then)
warmup_full_rank_epochs=0 # stage 11: E > 0 trains the config's architecture dense (lowrank: null) for E epochs,
                          # truncates it to the config's ranks by SVD and trains on low-rank to max_epoch
pretrained_model=""      # stage 11: ESPnet's --init_param, <file>[:<src keys>:<dst keys>:<excluded keys>] (read
                         # weights-only), e.g. a dense model's valid.acc.ave.pth to start a low-rank one from
ignore_init_mismatch=false # stage 11: ESPnet's: leave out the --pretrained_model tensors whose shapes differ
asr_speech_fold_length=800 # stage 11: ESPnet's --fold_length of the speech (x100 for raw audio: samples) and the
asr_text_fold_length=150   # text, for its folded batch sampler (batch_type: folded)

# Decoding
inference_config=""
inference_tag=""
inference_args=""
inference_asr_model=valid.acc.ave.pth
batch_size=1             # stage 12: ESPnet's decoding batch size; its asr_inference decodes one utterance at a
                         # time (1 only): --inference_nj jobs decode in parallel
use_lm=false             # stage 12: shallow fusion with the LM of stage 7. ESPnet's default is true; false here,
                         # as the paper decodes without an LM (it rescores n-best lists instead: stage 17)
inference_lm=valid.loss.best.pth  # the LM checkpoint to fuse (ESPnet's default: valid.loss.ave.pth)
inference_lm_exp=""      # the LM directory to fuse; default: the LM of stage 7 (<expdir>/lm_<lm_tag>).
                         # e.g. a LoRA-adapted LM of stage 9, with --inference_lm latest.pth

# Text cleaning (ESPnet's options and defaults): --cleaner and --nlsyms_txt reach the token list (stage 5,
# char/word), the shape files (10), LM and ASR training (6-7, 11: ESPnet's preprocessor) and scoring (13)
cleaner=none             # text cleaner on the training text and the references, e.g. tacotron
hyp_cleaner=none         # scoring: the same on the hypotheses
nlsyms_txt=none          # non-linguistic symbols (one a line): one token each in training, removed before scoring

# Language model and rescoring (stages 6-9 and 17; skipped without --lm_config)
lm_config=""             # ESPnet LM training config, e.g. conf/lm/train_lm_transformer.yaml
lm_tag=""
lm_exp=""                # the LM directory (ESPnet's); default: <expdir>/lm_<lm_tag> (--lm_tag unused then)
lm_stats_dir=""          # the LM's texts and shape files (ESPnet's); default: <expdir>/lm_stats_<lang>_<token type>
lm_args=""
lm_train_text=""         # Kaldi text file(s) for the LM, space-separated; default: <dumpdir>/raw/<train_set>/text
                         # (with speed perturbation: <datadir>/<train_set>/text, each sentence once)
lm_corpus=""             # plain-text LM corpus (a sentence a line, .gz ok), added to lm_train_text
lm_dev_text=""           # stage 6: the LM's validation text (ESPnet's); default: <datadir>/<valid_set>/text
lm_test_text=""          # stage 8: also the perplexity of this text (ESPnet's) -> <lm_exp>/perplexity_lm_test_text/ppl
lm_fold_length=150       # stages 7 and 9: ESPnet's --fold_length of the LM's text
lm_base_model=valid.loss.best.pth
lora_config=""           # LoRA configs (conf/lm/lora_*.yaml), space-separated: one adapted LM each
lora_train_text=""       # in-domain Kaldi text(s) for the adaptation; default: that of --lm_train_text
lora_args=""
lora_model=latest.pth    # the adapted LM at the end of training: the ranks its strategy ends with
lm_tune_set=""           # a decoded set whose WER picks λ and β; default: --valid_set
lm_weights="0:1.5:0.05"  # λ grid (start:stop:step)
length_bonuses="0:4:0.5" # β grid, per word
lm_robustness=true       # stage 17 also measures NPRR on the other test sets
nprr_args="--substitution_rate 0.3 --seed 0"

# Scoring (stage 13; ESPnet's)
score_opts=""            # ESPnet's sclite options: only "-e utf-8" (what the scorer reads anyway); others refused
local_score_opts=""      # after stage 13: the recipe's local/score.sh, when it has one, runs with these and <asr_exp>

# Upload (stage 15, with --skip_upload_hf false)
hf_repo=""               # <user or org>/<name> on the Hugging Face hub; stage 15 pushes only with it

# ESPnet 202511's asr.sh options that this recipe has no use for: each keeps ESPnet's default (which is what this
# recipe does) and any other value stops the run with the reason. "<name>|<values accepted, the first the
# default; \"\" for empty>|<why not>"
_no_k2="only with --use_k2, which this recipe refuses"
espnet_refused=(
    "download_model|\"\"|nothing is downloaded here: decode a model you have with --skip_train true --asr_exp <its directory> --inference_asr_model <its .pth> (a pack of stage 14 unpacks with espnet_lrsms.packing.unpack_model)"
    "use_lightning|false|this recipe trains with ESPnet's Trainer (espnet2.bin.launch -> espnet_lrsms.bin.asr_train), where the low-rank layers and --warmup_full_rank_epochs are wired; use --asr_args for trainer options"
    "post_process_local_data_opts|\"\"|stage 4 runs no local/data.sh again here (ESPnet's post-processing call); prepare the sets in stage 1"
    "auxiliary_data_tags|\"\"|the models here train on one ASR task: ESPnet's auxiliary-task training data (prompted multi-task) is not supported"
    "multi_columns_input_wav_scp|false|wav.scp holds one audio (file or command) per utterance here; ESPnet's multi-column (multi-channel) wav.scp is not supported"
    "multi_columns_output_wav_scp|false|stage 3 writes one audio file per utterance (ESPnet's multi-column wav.scp is not supported)"
    "use_ngram|false|there is no n-gram LM (no KenLM): ESPnet's stage 9 is this recipe's LoRA adaptation; fuse the neural LM with --use_lm true or rescore n-best lists (stage 17) with --lm_config"
    "ngram_exp|\"\"|only with --use_ngram, which this recipe refuses"
    "ngram_num|3|only with --use_ngram, which this recipe refuses"
    "inference_ngram|3gram.bin|only with --use_ngram, which this recipe refuses"
    "use_word_lm|false|ESPnet stops on it too (word LM not supported); the LM here uses the ASR token list (--token_type word for word units)"
    "word_vocab_size|10000|only with --use_word_lm, which this recipe refuses"
    "num_splits_lm|1|ESPnet's split-text LM training for huge corpora is not implemented here: the LM trains on its text in one piece"
    "num_splits_asr|1|ESPnet's split-scp training for huge corpora is not implemented here: the training set is read in one piece (ESPnet's batch samplers read only the shape files, so a large set needs no split)"
    "use_prompt|false|the models here take no prompt tokens (ESPnet's prompted multi-task decoding)"
    "use_lang_prompt|false|the models here take no language prompt"
    "use_nlp_prompt|false|the models here take no text prompt"
    "asr_task|asr|the low-rank models are ESPnet's asr task (espnet_lrsms.bin.asr_train): there is no low-rank asr_transducer"
    "num_ref|1|one reference text per utterance (data/<set>/text): ESPnet's multi-speaker text_spk<n> training is not supported"
    "num_inf|\"\" 1|one hypothesis per utterance (ESPnet's multi-speaker inference is not supported)"
    "sot_asr|false|ESPnet's serialized output training (multi-talker) is not supported"
    "use_k2|false|decoding is ESPnet's beam search (espnet_lrsms.bin.asr_inference); k2 decoding is not supported (k2 is not installed)"
    "k2_ctc_decoding|true|${_no_k2}"
    "use_nbest_rescoring|true|${_no_k2} (n-best rescoring with an LM is stage 17, with --lm_config)"
    "num_paths|1000|${_no_k2}"
    "nll_batch_size|100|${_no_k2}"
    "k2_config|./conf/decode_asr_transformer_with_k2.yaml|${_no_k2}"
    "use_streaming|false|the encoders here decode whole utterances (no streaming encoder)"
    "use_maskctc|false|the models here decode with CTC/attention beam search (no Mask-CTC decoder)"
    "bpe_input_sentence_size|100000000|stage 5's SentencePiece reads up to ESPnet's default of 100000000 sentences; not settable here"
    "bpe_char_cover|1.0 1|stage 5's SentencePiece covers every character (ESPnet's default 1.0); not settable here"
    "hugging_face_model_name_or_path|\"\"|the token lists are stage 5's (--token_type bpe, char or word): ESPnet's hugging_face tokenizer is not supported (nothing is downloaded)"
    "g2p|none|phoneme tokens (ESPnet's --token_type phn) are not supported: use --token_type bpe, char or word"
)
_refused_names=""
for _entry in "${espnet_refused[@]}"; do  # the defaults
    IFS='|' read -r _name _accepted _ <<< "${_entry}"
    _refused_names+=" --${_name}"
    _default=${_accepted%% *}
    [[ "$_default" == '""' ]] && _default=""
    printf -v "${_name}" '%s' "${_default}"
done

help_message="Usage: $0 --train_set <set> --valid_set <set> --test_sets \"<set> ...\" --asr_config <yaml> --inference_config <yaml> [options]
Options (ESPnet's spelling; --name-with-hyphens works too): --stage --stop_stage --skip_stages \"<n> ...\"
  --skip_data_prep --skip_train --skip_eval --skip_packing (default true) --skip_upload_hf (default true)
  --eval_valid_set --ngpu --num_nodes --host --nj --inference_nj --gpu_inference
  --train_cmd --cuda_cmd --decode_cmd --speed_perturb_factors --min_wav_duration --max_wav_duration
  --local_data_opts --dumpdir --feats_type raw --audio_format flac|wav --fs 16k (stages 3-4, 10-11, ESPnet's)
  --asr_config --inference_config --train_set --valid_set --test_sets --nbpe --bpemode --expdir --asr_tag
  --asr_args --warmup_full_rank_epochs --inference_args --inference_tag --inference_asr_model --on_error --python --hf_repo
  --token_type bpe|char|word --oov --blank --sos_eos --bpe_nlsyms (ESPnet's)
  --cleaner --hyp_cleaner --nlsyms_txt (training text and scoring, ESPnet's; default none)
  --use_lm true|false (stage 12 shallow fusion; default false: the paper decodes without an LM)
  --inference_lm --inference_lm_exp
  LM (stages 6-9) and rescoring (17): --lm_config --lm_tag --lm_args --lm_train_text --lm_corpus --lm_base_model
  --lora_config --lora_train_text --lora_args --lora_model --lm_tune_set --lm_weights --length_bonuses --lm_robustness
  --nprr_args --lm_exp --lm_stats_dir --lm_dev_text --lm_test_text --lm_fold_length
  ESPnet's, too: --asr_exp --pretrained_model --ignore_init_mismatch --asr_speech_fold_length --asr_text_fold_length
  --bpe_train_text --batch_size 1 --score_opts \"-e utf-8\" --local_score_opts --feats_normalize global_mvn|utterance_mvn|none
  Refused but for ESPnet's default (the error says why):${_refused_names}"

# shellcheck source=utils/parse_recipe_options.sh
. "${here}/utils/parse_recipe_options.sh"  # the options set, none positional, stages.sh, the --skip_* checked

for var in train_set valid_set asr_config; do
    [[ -n "${!var}" ]] || { echo "$0: --${var} is required" >&2; exit 1; }
done
if [[ "$feats_type" != raw ]]; then
    echo "$0: --feats_type ${feats_type}: not supported, only raw (the models' front end reads the waveform;" \
         "ESPnet's fbank_pitch and extracted features have no input here)" >&2
    exit 1
fi
case "$feats_normalize" in  # ESPnet's values (its asr.sh acts on global_mvn only)
    ""|global_mvn|utterance_mvn|none) ;;
    *) echo "$0: --feats_normalize ${feats_normalize}: expected global_mvn, utterance_mvn or none (ESPnet's), or" \
            "empty (the config's normalize: decides)" >&2; exit 1 ;;
esac
_normalizer=${asr_config}  # what asks for global_mvn in stages 10-11's messages
[[ "$feats_normalize" != global_mvn ]] || _normalizer="--feats_normalize global_mvn"
case "$audio_format" in
    flac|wav) ;;
    *) echo "$0: --audio_format ${audio_format}: expected flac or wav (ESPnet's wav.ark and flac.ark are not written" \
            "here)" >&2; exit 1 ;;
esac
if [[ -z "$dumpdir" ]]; then  # beside --datadir: dump/ for data/, as ESPnet's
    _datadir="${datadir%/}"
    if [[ "$_datadir" == */* ]]; then dumpdir="${_datadir%/*}/dump"; else dumpdir=dump; fi
fi
data_feats="${dumpdir}/raw"  # ESPnet's: what stage 3 writes and stages 4-17 read
[[ -f "$asr_config" ]] || { echo "$0: --asr_config ${asr_config}: no such file" >&2; exit 1; }
if [[ -n "$inference_config" && ! -f "$inference_config" ]]; then
    echo "$0: --inference_config ${inference_config}: no such file" >&2; exit 1
fi
lora_configs=() _files=()
path_list lora_configs "${lora_config}"

# ESPnet's token lists: <lang>_token_list/bpe_<bpemode><nbpe>/ (with bpe.model), .../char/, .../word/; tags and
# stats dirs name the token type, with nbpe for bpe only
bpedir="${datadir}/${lang}_token_list/bpe_${bpemode}${nbpe}"
bpemodel="${bpedir}/bpe.model"
token_suffix="${token_type}${nbpe}"
case "$token_type" in
    bpe) token_list="${bpedir}/tokens.txt" ;;
    char|word) token_list="${datadir}/${lang}_token_list/${token_type}/tokens.txt"; bpemodel=none; token_suffix="${token_type}" ;;
    phn) echo "$0: --token_type phn: ESPnet's phoneme tokens need a g2p (its --g2p), which this recipe does not" \
              "support; use bpe, char or word" >&2; exit 1 ;;
    *) echo "$0: --token_type ${token_type}: not supported; use bpe, char or word" >&2; exit 1 ;;
esac
token_files=("${token_list}")  # what stage 5 makes
[[ "$bpemodel" == none ]] || token_files=("${bpemodel}" "${token_list}")
# ESPnet's preprocessor options: training cleans and tokenizes the text as stage 5 made the token list
text_opts=(--non_linguistic_symbols "${nlsyms_txt}" --cleaner "${cleaner}")
# stage 2 makes <train_set>_sp, which stages 3-11 use
text_set="${train_set}"
[[ -z "$speed_perturb_factors" ]] || train_set="${train_set}_sp"
# the training sentences once each, for the token list (stage 5) and the LM (6, 9): the dumped, filtered training
# set (ESPnet's default); with speed perturbation the set as prepared (<train_set>_sp repeats each sentence once
# per factor; ESPnet's speed-perturbed recipes pass --bpe_train_text data/<set>/text for that)
train_text="${data_feats}/${train_set}/text"
[[ -z "$speed_perturb_factors" ]] || train_text="${datadir}/${text_set}/text"
if [[ -z "$asr_stats_dir" ]]; then
    asr_stats_dir="${expdir}/asr_stats_raw_${lang}_${token_suffix}"
    [[ -z "$speed_perturb_factors" ]] || asr_stats_dir+="_sp"
fi
# tags name what was overridden, as ESPnet's do: another --asr_args / --inference_args is another
# experiment or decode directory, never the old one reused
if [[ -z "$asr_tag" ]]; then
    asr_tag="$(basename "${asr_config}" .yaml)_raw_${lang}_${token_suffix}"
    if [[ -n "$asr_args" ]]; then asr_tag+="$(echo "${asr_args}" | sed -e "s/--/_/g" -e "s/[ |=/]//g")"; fi
    [[ -z "$speed_perturb_factors" ]] || asr_tag+="_sp"
    (( warmup_full_rank_epochs == 0 )) || asr_tag+="_warmup_full_rank${warmup_full_rank_epochs}"
fi
[[ -n "$asr_exp" ]] || asr_exp="${expdir}/asr_${asr_tag}"  # ESPnet's --asr_exp wins over the tag
if [[ -n "$lm_config" ]]; then
    [[ -f "$lm_config" ]] || { echo "$0: --lm_config ${lm_config}: no such file" >&2; exit 1; }
    for _cfg in "${lora_configs[@]}"; do
        [[ -f "$_cfg" ]] || { echo "$0: --lora_config: ${_cfg}: no such file" >&2; exit 1; }
    done
    [[ -n "$lm_tag" ]] || lm_tag="$(basename "${lm_config}" .yaml)_${lang}_${token_suffix}"
    [[ -n "$lm_exp" ]] || lm_exp="${expdir}/lm_${lm_tag}"  # ESPnet's --lm_exp wins over the tag
    [[ -n "$lm_stats_dir" ]] || lm_stats_dir="${expdir}/lm_stats_${lang}_${token_suffix}"
    [[ -n "$lm_train_text" ]] || lm_train_text="${train_text}"
    [[ -n "$lora_train_text" ]] || lora_train_text="${train_text}"
    [[ -n "$lm_tune_set" ]] || lm_tune_set="${valid_set}"
fi
[[ "$use_lm" == true || "$use_lm" == false ]] || { echo "$0: --use_lm ${use_lm}: expected true or false" >&2; exit 1; }
fusion_lm_exp=""         # stage 12's shallow-fusion LM directory (--use_lm true)
if [[ "$use_lm" == true ]]; then
    fusion_lm_exp="${inference_lm_exp:-${lm_exp:-}}"
    if [[ -z "$fusion_lm_exp" ]]; then
        echo "$0: --use_lm true needs an LM to fuse: --lm_config (stages 6-7 train it into <expdir>/lm_<lm_tag>)" \
             "or --inference_lm_exp <LM dir>" >&2
        exit 1
    fi
fi
if [[ -z "$inference_tag" ]]; then
    inference_tag="$(inference_tag_of "${inference_config}" "${inference_args}")"
    if [[ "$use_lm" == true ]]; then  # ESPnet's: fused and plain decodes never share a directory
        inference_tag+="_lm_$(basename "${fusion_lm_exp}")_$(echo "${inference_lm}" | sed -e "s/\//_/g" -e "s/\.[^.]*$//g")"
    fi
    inference_tag+="_asr_model_${inference_asr_model%.pth}"
fi
# ESPnet 202511's options: those this recipe refuses keep their default (else the reason), the others are checked
check_refused_options
for _name in eval_valid_set ignore_init_mismatch; do
    [[ "${!_name}" == true || "${!_name}" == false ]] || { echo "$0: --${_name} takes true or false, got '${!_name}'" >&2; exit 1; }
done
if [[ "$batch_size" != 1 ]]; then
    echo "$0: --batch_size ${batch_size}: ESPnet's asr_inference decodes one utterance at a time (it stops on a" \
         "larger batch: batch decoding is not implemented); 1 only, and --inference_nj jobs decode in parallel" >&2
    exit 1
fi
read -r -a _words <<< "${score_opts}"
for ((i = 0; i < ${#_words[@]}; i += 2)); do  # sclite's options: its -e utf-8 is what the scorer here does anyway
    if [[ "${_words[i]}" != -e || ! "${_words[i + 1]:-}" =~ ^(utf-8|UTF-8|utf8)$ ]]; then
        echo "$0: --score_opts \"${score_opts}\": the scorer here (espnet_lrsms.bin.score: sclite's alignment and" \
             "report, in Python) reads UTF-8 and is case-insensitive, as sclite by default; it takes only \"-e utf-8\"" \
             "(no -s case-sensitive scoring, no -c NOASCII/DH character splits: the CER rows score characters)" >&2
        exit 1
    fi
done
# stages 12-13 decode and score the test sets, and the validation set first with --eval_valid_set true (once)
decode_sets="${test_sets}"
if [[ "$eval_valid_set" == true ]]; then
    decode_sets="${valid_set}"
    for dset in ${test_sets}; do [[ "$dset" == "$valid_set" ]] || decode_sets+=" ${dset}"; done
fi
use_lm() {  # <stage>: stages 6-9 and 17 need --lm_config
    [[ -n "$lm_config" ]] && return 0
    log "Stage $1 skipped: no --lm_config (LM stages 6-9 and n-best rescoring 17; docs/lm_rescoring.md)"
    return 1
}

# ========================== data preparation: stages 1-5 ==========================

if run_stage 1; then
    # ESPnet's stage 1: the recipe's own data preparation, local/data.sh with --local_data_opts (split into words).
    # In its environment it finds the sets this script reads and where: LRSMS_DATA_SETS, LRSMS_DATADIR, LRSMS_NJ and
    # LRSMS_ON_ERROR, which the recipes here take as defaults (docs/recipes.md, "Add a corpus")
    if [[ ! -e local/data.sh ]]; then
        echo "$0: Stage 1 runs the recipe's local/data.sh, and ${PWD} has none (docs/recipes.md, \"Add a corpus\");" \
             "with ${datadir}/<set> made otherwise, start at --stage 2" >&2
        exit 1
    fi
    [[ -x local/data.sh ]] || { echo "$0: ${PWD}/local/data.sh is not executable (chmod +x local/data.sh)" >&2; exit 1; }
    require_count 1 --nj "${nj}"
    read -r -a _opts <<< "${local_data_opts}"
    _call="local/data.sh${local_data_opts:+ ${local_data_opts}}"
    log "Stage 1: data preparation for ${text_set} ${valid_set} ${test_sets}: ${_call}"
    LRSMS_DATA_SETS="${text_set} ${valid_set} ${test_sets}" LRSMS_DATADIR="${datadir}" LRSMS_NJ="${nj}" \
        LRSMS_ON_ERROR="${on_error}" local/data.sh "${_opts[@]}" \
        || { echo "$0: Stage 1: ${_call} failed (exit $?)" >&2; exit 1; }
    _missing=()
    for dset in ${text_set} ${valid_set} ${test_sets}; do
        for f in wav.scp text; do
            [[ -s "${datadir}/${dset}/${f}" || " ${_missing[*]} " == *" ${datadir}/${dset}/${f} "* ]] \
                || _missing+=("${datadir}/${dset}/${f}")
        done
    done
    if (( ${#_missing[@]} > 0 )); then
        echo "$0: Stage 1: local/data.sh did not write ${_missing[*]} (it writes ${datadir}/<set>/{wav.scp,text," \
             "utt2spk} for --train_set, --valid_set and each of --test_sets)" >&2
        exit 1
    fi
fi

if run_stage 2; then
    if [[ -n "$speed_perturb_factors" ]]; then
        require_files 2 "made by stage 1" "${datadir}/${text_set}/wav.scp" "${datadir}/${text_set}/text"
        log "Stage 2: speed perturbation (factors ${speed_perturb_factors}): ${datadir}/${text_set} -> ${datadir}/${train_set}"
        # shellcheck disable=SC2086
        ${python} -m espnet_lrsms.bin.speed_perturb --data_dir "${datadir}/${text_set}" --out_dir "${datadir}/${train_set}" \
            --factors ${speed_perturb_factors} --nj "${nj}" --on_error "${on_error}"
    else
        log "Stage 2: no speed perturbation (--speed_perturb_factors is empty)"
    fi
fi

if run_stage 3; then
    # ESPnet's --feats_type raw: real audio files at --fs (commands, arks and segments resolved), the training and
    # validation sets into org/ for stage 4 to filter
    require_count 3 --nj "${nj}"
    _pairs=() _seen=" "
    for dset in "${train_set}" "${valid_set}" ${test_sets}; do
        [[ "$_seen" == *" ${dset} "* ]] && continue
        _seen+="${dset} "
        require_files 3 "made by stage $([[ "$dset" == "$train_set" && -n "$speed_perturb_factors" ]] && echo 2 || echo 1)" \
            "${datadir}/${dset}/wav.scp" "${datadir}/${dset}/text"
        _out="${data_feats}/${dset}"
        [[ "$dset" != "$train_set" && "$dset" != "$valid_set" ]] || _out="${data_feats}/org/${dset}"
        _pairs+=(--pair "${datadir}/${dset}" "${_out}")
    done
    log "Stage 3: format wav.scp (--feats_type raw, --audio_format ${audio_format}, --fs ${fs}): ${datadir} -> ${data_feats}"
    ${python} -m espnet_lrsms.bin.format_audio "${_pairs[@]}" --fs "${fs}" --audio_format "${audio_format}" \
        --nj "${nj}" --on_error "${on_error}"
fi

if run_stage 4; then
    require_count 4 --nj "${nj}"
    require_files 4 "made by stage 3" "${data_feats}/org/${train_set}/wav.scp" "${data_feats}/org/${valid_set}/wav.scp"
    log "Stage 4: duration filter (${min_wav_duration} s < duration < ${max_wav_duration} s): ${data_feats}/org/{${train_set},${valid_set}} -> ${data_feats}"
    ${python} -m espnet_lrsms.bin.filter_durations --pair "${data_feats}/org/${train_set}" "${data_feats}/${train_set}" \
        --pair "${data_feats}/org/${valid_set}" "${data_feats}/${valid_set}" --fs "${fs}" \
        --min_wav_duration "${min_wav_duration}" --max_wav_duration "${max_wav_duration}" --nj "${nj}"
fi

if run_stage 5; then
    if [[ "$token_type" == bpe && -n "$bpe_train_text" ]]; then  # ESPnet's --bpe_train_text: SentencePiece's text
        require_files 5 "--bpe_train_text" "${bpe_train_text}"
    else
        require_files 5 "made by stage $([[ -z "$speed_perturb_factors" ]] && echo 4 || echo 1)" "${train_text}"
    fi
    _specials=(--blank "${blank}" --oov "${oov}" --sos_eos "${sos_eos}")
    if [[ "$token_type" == bpe ]]; then
        log "Stage 5: ${bpemode} tokenizer with ${nbpe} pieces on ${bpe_train_text:-${train_text}} -> ${bpedir}"
        ${python} -m espnet_lrsms.bin.train_tokenizer --token_type bpe --text "${bpe_train_text:-${train_text}}" \
            --out_dir "${bpedir}" --nbpe "${nbpe}" --mode "${bpemode}" --bpe_nlsyms "${bpe_nlsyms:-none}" "${_specials[@]}"
    else
        # as ESPnet's: the list of the LM's training text (default: the training set's), cleaned
        _texts=() _text_opts=()
        path_list _texts "${lm_train_text:-${train_text}}"
        for f in "${_texts[@]}"; do require_files 5 "the training text or a --lm_train_text" "${f}"; _text_opts+=(--text "${f}"); done
        log "Stage 5: ${token_type} token list of ${_texts[*]} (cleaner ${cleaner}, nlsyms ${nlsyms_txt}) -> ${token_list}"
        ${python} -m espnet_lrsms.bin.train_tokenizer --token_type "${token_type}" "${_text_opts[@]}" \
            --out_dir "$(dirname "${token_list}")" "${text_opts[@]}" "${_specials[@]}"
    fi
fi

# ========================== training: stages 6-11 ==========================

lora_exp_of() {  # <lm_exp>_lora_<config name less a leading "lora_">
    local name; name=$(basename "$1" .yaml)
    echo "${lm_exp}_lora_${name#lora_}"
}

lm_train() {  # <output dir> <set under lm_stats_dir> <config> [lm_train options]: one LM training run
    local out=$1 set=$2 cfg=$3; shift 3
    mkdir -p "${out}"
    ${python} -m espnet2.bin.launch --cmd "${cuda_cmd} --gpu ${ngpu}" --log "${out}/train.log" --ngpu "${ngpu}" \
        --num_nodes 1 --init_file_prefix "${out}/.dist_init_" --multiprocessing_distributed true -- \
        ${python} -m espnet_lrsms.bin.lm_train --ngpu "${ngpu}" --use_preprocessor true \
            --token_type "${token_type}" --bpemodel "${bpemodel}" --token_list "${token_list}" "${text_opts[@]}" \
            --resume true --train_data_path_and_name_and_type "${lm_stats_dir}/${set}/text,text,text" \
            --valid_data_path_and_name_and_type "${lm_stats_dir}/valid/text,text,text" \
            --train_shape_file "${lm_stats_dir}/${set}/text_shape.${token_type}" \
            --valid_shape_file "${lm_stats_dir}/valid/text_shape.${token_type}" \
            --fold_length "${lm_fold_length}" --output_dir "${out}" --config "${cfg}" "$@" \
        || { log "LM training failed; see ${out}/train.log"; exit 1; }
}

if run_stage 6 && use_lm 6; then
    require_files 6 "made by stage 5" "${token_files[@]}"
    log "Stage 6: LM texts (${lm_train_text}${lm_corpus:+ + ${lm_corpus}}) -> ${lm_stats_dir}"
    _text_opts=(--text valid "${lm_dev_text:-${data_feats}/${valid_set}/text}")  # ESPnet's --lm_dev_text
    path_list _files "${lm_train_text}"
    for f in "${_files[@]}"; do _text_opts+=(--text train "${f}"); done
    path_list _files "${lm_corpus}"
    for f in "${_files[@]}"; do _text_opts+=(--plain_text train "${f}"); done
    if [[ -n "$lora_config" ]]; then
        path_list _files "${lora_train_text}"
        for f in "${_files[@]}"; do _text_opts+=(--text lora_train "${f}"); done
    fi
    for ((i = 2; i < ${#_text_opts[@]}; i += 3)); do require_files 6 "a --lm_train_text, --lm_corpus or --lora_train_text" "${_text_opts[i]}"; done
    ${python} -m espnet_lrsms.bin.lm_prepare_text --out_root "${lm_stats_dir}" "${_text_opts[@]}" \
        --token_type "${token_type}" --bpemodel "${bpemodel}" --token_list "${token_list}" "${text_opts[@]}"
fi

if run_stage 7 && use_lm 7; then
    require_files 7 "made by stage 6" "${lm_stats_dir}/train/text" "${lm_stats_dir}/valid/text"
    log "Stage 7: LM training -> ${lm_exp} (log: ${lm_exp}/train.log)"
    write_run_sh "${lm_exp}" 7
    # shellcheck disable=SC2086
    lm_train "${lm_exp}" train "${lm_config}" ${lm_args}
fi

if run_stage 8 && use_lm 8; then
    [[ -n "$lm_test_text" ]] || require_words 8 --test_sets "${test_sets}"
    require_files 8 "made by stage 7" "${lm_exp}/config.yaml" "${lm_exp}/${lm_base_model}"
    _ppl_texts=()  # <name> <text>: each test set's text, and ESPnet's --lm_test_text
    for dset in ${test_sets}; do
        require_files 8 "made by stage 3" "${data_feats}/${dset}/text"
        _ppl_texts+=("${dset}" "${data_feats}/${dset}/text")
    done
    if [[ -n "$lm_test_text" ]]; then
        require_files 8 "--lm_test_text" "${lm_test_text}"
        _ppl_texts+=(lm_test_text "${lm_test_text}")
    fi
    for ((i = 0; i < ${#_ppl_texts[@]}; i += 2)); do
        dset=${_ppl_texts[i]} _text=${_ppl_texts[i + 1]}
        _out="${lm_exp}/perplexity_${dset}"
        log "Stage 8: perplexity of ${lm_exp}/${lm_base_model} on ${_text} -> ${_out}/ppl"
        rm -rf "${_out}.tmp"
        # shellcheck disable=SC2086
        ${cuda_cmd} --gpu "${ngpu}" "${_out}.tmp/lm_calc_perplexity.log" \
            ${python} -m espnet2.bin.lm_calc_perplexity --ngpu "${ngpu}" \
                --data_path_and_name_and_type "${_text},text,text" \
                --train_config "${lm_exp}/config.yaml" --model_file "${lm_exp}/${lm_base_model}" \
                --output_dir "${_out}.tmp" \
            || { log "perplexity failed; see ${_out}.tmp/lm_calc_perplexity.log"; exit 1; }
        rm -rf "${_out}" && mv "${_out}.tmp" "${_out}"
        log "PPL ${dset}: $(cat "${_out}/ppl")"
    done
fi

if run_stage 9 && use_lm 9; then
    if [[ ${#lora_configs[@]} -eq 0 ]]; then
        log "Stage 9: no LoRA adaptation (--lora_config is empty)"
    else
        require_files 9 "made by stage 7" "${lm_exp}/config.yaml" "${lm_exp}/${lm_base_model}"
        require_files 9 "made by stage 6 with --lora_config given" "${lm_stats_dir}/lora_train/text"
    fi
    for _cfg in "${lora_configs[@]}"; do
        _lora_exp=$(lora_exp_of "${_cfg}")
        log "Stage 9: LoRA adaptation of ${lm_exp}/${lm_base_model} (${lora_train_text}) with ${_cfg} -> ${_lora_exp}"
        # shellcheck disable=SC2086
        lm_train "${_lora_exp}" lora_train "${_cfg}" --base_lm_config "${lm_exp}/config.yaml" \
            --base_lm_file "${lm_exp}/${lm_base_model}" ${lora_args}
        grep -h "LoRA strategy" "${_lora_exp}/train.log" | tail -n 1 | sed 's/^.*INFO: //'
    done
fi

# stages 10-11: the training and validation data (stages 3-4's dump), as ESPnet's data options
data_files=("${data_feats}/${train_set}/wav.scp" "${data_feats}/${train_set}/text"
            "${data_feats}/${valid_set}/wav.scp" "${data_feats}/${valid_set}/text")
data_opts=(--train_data_path_and_name_and_type "${data_files[0]},speech,sound"
           --train_data_path_and_name_and_type "${data_files[1]},text,text"
           --valid_data_path_and_name_and_type "${data_files[2]},speech,sound"
           --valid_data_path_and_name_and_type "${data_files[3]},text,text")
if run_stage 10; then
    require_files 10 "made by stage 5" "${token_files[@]}"
    require_files 10 "made by stages 3-4" "${data_files[@]}"
    log "Stage 10: shape files -> ${asr_stats_dir}"
    ${python} -m espnet_lrsms.bin.make_shapes --token_type "${token_type}" --bpemodel "${bpemodel}" \
        --token_list "${token_list}" "${text_opts[@]}" \
        --pair "${data_feats}/${train_set}" "${asr_stats_dir}/train" --pair "${data_feats}/${valid_set}" "${asr_stats_dir}/valid"
    # feature statistics (ESPnet's collect stats) only for global_mvn (the config's normalize:, or --feats_normalize)
    _plan=$(${python} -m espnet_lrsms.bin.feats_stats plan --config "${asr_config}" --asr_args="${asr_args}" \
        --feats_normalize "${feats_normalize}") || exit 1
    read -r _normalize _stats_from <<< "${_plan}"
    if [[ "$_stats_from" == recipe ]]; then
        require_count 10 --nj "${nj}"
        _logdir="${asr_stats_dir}/logdir"
        rm -rf "${_logdir}"
        _nj=$(${python} -m espnet_lrsms.bin.feats_stats split --train "${data_files[0]}" \
            --valid "${data_files[2]}" --nj "${nj}" --logdir "${_logdir}") || exit 1
        log "Stage 10: ${_normalizer} normalizes with global_mvn: feature statistics of ${data_feats}/${train_set}," \
            "${_nj} job(s) -> ${asr_stats_dir}/train/feats_stats.npz (log: ${_logdir}/stats.*.log)"
        # ESPnet's collect-stats mode of the training task: the front end only, one utterance a batch (no
        # padding in the statistics), nothing normalized yet, no schedule to size
        # shellcheck disable=SC2086
        ${train_cmd} JOB=1:"${_nj}" "${_logdir}/stats.JOB.log" \
            ${python} -m espnet_lrsms.bin.asr_train --collect_stats true --ngpu 0 \
                --use_preprocessor true \
                --token_type "${token_type}" --bpemodel "${bpemodel}" --token_list "${token_list}" "${text_opts[@]}" \
                "${data_opts[@]}" \
                --train_shape_file "${_logdir}/train/keys.JOB.scp" --valid_shape_file "${_logdir}/valid/keys.JOB.scp" \
                --output_dir "${_logdir}/stats.JOB" --config "${asr_config}" --frontend_conf "fs=${fs}" ${asr_args} \
                --normalize none --scheduler none --batch_size 1 \
            || { log "collecting feature statistics failed; see ${_logdir}/stats.*.log"; exit 1; }
        ${python} -m espnet_lrsms.bin.feats_stats aggregate --logdir "${_logdir}" --nj "${_nj}" --stats_dir "${asr_stats_dir}"
    elif [[ "$_stats_from" == given ]]; then
        log "Stage 10: ${asr_config} normalizes with global_mvn from the stats_file that it or --asr_args names: no statistics collected"
    else
        log "Stage 10: ${asr_config} normalizes with ${_normalize}: no feature statistics needed, shape files only"
    fi
fi

if run_stage 11; then
    log "Stage 11: training -> ${asr_exp} (log: ${asr_exp}/train.log; ngpu=${ngpu}, num_nodes=${num_nodes})"
    require_files 11 "made by stage 5" "${token_files[@]}"
    require_files 11 "made by stages 3-4" "${data_files[@]}"
    require_files 11 "made by stage 10" "${asr_stats_dir}/train/speech_shape" "${asr_stats_dir}/valid/speech_shape"
    _plan=$(${python} -m espnet_lrsms.bin.feats_stats plan --config "${asr_config}" --asr_args="${asr_args}" \
        --feats_normalize "${feats_normalize}") || exit 1
    normalize_opts=()  # ESPnet's: global_mvn reads stage 10's statistics
    if [[ "${_plan#* }" == recipe ]]; then
        require_files 11 "made by stage 10: ${_normalizer} normalizes with global_mvn" "${asr_stats_dir}/train/feats_stats.npz"
        normalize_opts=(--normalize global_mvn --normalize_conf "stats_file=${asr_stats_dir}/train/feats_stats.npz")
    fi
    # ESPnet's --pretrained_model: --init_param (read weights-only here), and --ignore_init_mismatch
    init_opts=()
    if [[ -n "$pretrained_model" ]]; then
        require_files 11 "--pretrained_model" "${pretrained_model%%:*}"
        init_opts=(--init_param "${pretrained_model}")
        log "Stage 11: initialised from --pretrained_model ${pretrained_model} (ESPnet's --init_param, read weights-only;" \
            "--ignore_init_mismatch ${ignore_init_mismatch})"
    fi
    write_run_sh "${asr_exp}" 11
    launch_opts=(--cmd "${cuda_cmd} --gpu ${ngpu}" --ngpu "${ngpu}"
                 --num_nodes "${num_nodes}" --init_file_prefix "${asr_exp}/.dist_init_"
                 --multiprocessing_distributed true)
    [[ -n "$host" ]] && launch_opts+=(--host "${host}")
    train_asr() {  # <log> [extra training arguments]: ESPnet training through its launcher, resumed if begun
        local log_file=$1; shift
        # shellcheck disable=SC2086
        ${python} -m espnet2.bin.launch "${launch_opts[@]}" --log "${log_file}" -- \
            ${python} -m espnet_lrsms.bin.asr_train \
                --use_preprocessor true \
                --token_type "${token_type}" --bpemodel "${bpemodel}" --token_list "${token_list}" "${text_opts[@]}" \
                "${data_opts[@]}" \
                --train_shape_file "${asr_stats_dir}/train/speech_shape" \
                --train_shape_file "${asr_stats_dir}/train/text_shape.${token_type}" \
                --valid_shape_file "${asr_stats_dir}/valid/speech_shape" \
                --valid_shape_file "${asr_stats_dir}/valid/text_shape.${token_type}" \
                --resume true \
                --fold_length "$((asr_speech_fold_length * 100))" --fold_length "${asr_text_fold_length}" \
                --ignore_init_mismatch "${ignore_init_mismatch}" \
                --output_dir "${asr_exp}" \
                --config "${asr_config}" --frontend_conf "fs=${fs}" "${normalize_opts[@]}" \
                ${asr_args} "$@"
    }
    if (( warmup_full_rank_epochs > 0 )) && [[ ! -f "${asr_exp}/full_rank_warmup/switched" ]]; then
        # the dense warm-up of the same architecture (lowrank: null), then the switch to the config's ranks
        _warmup=$(${python} -m espnet_lrsms.bin.full_rank_warmup args --config "${asr_config}" \
            --epochs "${warmup_full_rank_epochs}" --asr_args="${asr_args}") || exit 1
        mapfile -t _warmup_args <<< "${_warmup}"
        log "Stage 11: full-rank warm-up for ${warmup_full_rank_epochs} epoch(s): ${_warmup_args[*]} (log: ${asr_exp}/train_full_rank_warmup.log)"
        train_asr "${asr_exp}/train_full_rank_warmup.log" "${_warmup_args[@]}" "${init_opts[@]}"
        log "Stage 11: truncating the warm-up to the ranks of ${asr_config} (dense files kept in ${asr_exp}/full_rank_warmup)"
        ${python} -m espnet_lrsms.bin.full_rank_warmup switch --exp_dir "${asr_exp}" --config "${asr_config}"
    fi
    # after a warm-up, the low-rank run resumes from the truncated warm-up (--pretrained_model started the warm-up)
    (( warmup_full_rank_epochs > 0 )) && init_opts=()
    train_asr "${asr_exp}/train.log" "${init_opts[@]}"
fi

# ========================== evaluation, packing, upload: stages 12-15 ==========================

decode_opts=()
[[ -n "$inference_config" ]] && decode_opts+=(--config "${inference_config}")
if run_stage 12; then
    require_files 12 "made by stage 11, or set --inference_asr_model" "${asr_exp}/config.yaml" "${asr_exp}/${inference_asr_model}"
    if [[ "$use_lm" == true ]]; then
        require_files 12 "for --use_lm true: made by stage $([[ -n "$inference_lm_exp" ]] && echo "7 or 9 (--inference_lm_exp)" || echo 7), or set --inference_lm" \
            "${fusion_lm_exp}/config.yaml" "${fusion_lm_exp}/${inference_lm}"
        _lm_weight=""
        if [[ -n "$inference_config" ]]; then
            _lm_weight=$(${python} -c 'import sys, yaml; print((yaml.safe_load(open(sys.argv[1])) or {}).get("lm_weight", ""))' "${inference_config}")
        fi
        if [[ "$inference_args" =~ --lm_weight[=\ ]+([^ ]+) ]]; then _lm_weight=${BASH_REMATCH[1]}; fi
        if [[ -z "$_lm_weight" ]] || awk -v w="${_lm_weight}" 'BEGIN { exit !(w + 0 == 0) }'; then
            echo "$0: Stage 12: --use_lm true needs a non-zero lm_weight, and the decoding config" \
                 "(${inference_config:-none}) and --inference_args give ${_lm_weight:-none}: use a fusion config" \
                 "(e.g. conf/demo/decode_asr_tiny_lm.yaml) or --inference_args \"--lm_weight 0.3\"" >&2
            exit 1
        fi
        decode_opts+=(--lm_train_config "${fusion_lm_exp}/config.yaml" --lm_file "${fusion_lm_exp}/${inference_lm}")
        log "Stage 12: shallow fusion with ${fusion_lm_exp}/${inference_lm} (lm_weight ${_lm_weight})"
    fi
    _ngpu=0; [[ "$gpu_inference" == true ]] && _ngpu=1
    for dset in ${decode_sets}; do
        _dir="${asr_exp}/${inference_tag}/${dset}"
        _logdir="${_dir}/logdir"
        log "Stage 12: decoding ${dset} with ${asr_exp}/${inference_asr_model} -> ${_dir}"
        rm -rf "${_dir}.tmp" && mkdir -p "${_dir}.tmp/logdir"
        ${python} -m espnet_lrsms.bin.decode_jobs split --scp "${data_feats}/${dset}/wav.scp" \
            --nj "${inference_nj}" --logdir "${_dir}.tmp/logdir" || { rm -rf "${_dir}.tmp"; exit 1; }
        _nj=$(find "${_dir}.tmp/logdir" -maxdepth 1 -name 'keys.*.scp' | wc -l)  # at most one job per utterance
        # shellcheck disable=SC2086
        ${decode_cmd} --gpu "${_ngpu}" JOB=1:"${_nj}" "${_dir}.tmp/logdir/asr_inference.JOB.log" \
            ${python} -m espnet_lrsms.bin.asr_inference \
                --batch_size "${batch_size}" --ngpu "${_ngpu}" \
                --data_path_and_name_and_type "${data_feats}/${dset}/wav.scp,speech,sound" \
                --key_file "${_dir}.tmp/logdir/keys.JOB.scp" \
                --asr_train_config "${asr_exp}/config.yaml" \
                --asr_model_file "${asr_exp}/${inference_asr_model}" \
                --output_dir "${_dir}.tmp/logdir/output.JOB" \
                "${decode_opts[@]}" ${inference_args} \
            || { log "decoding failed; see ${_dir}.tmp/logdir/asr_inference.*.log"; exit 1; }
        # merge the jobs' n-best directories: <n>best_recog/{text,token,token_int,score,score_components}
        ${python} -m espnet_lrsms.bin.decode_jobs merge --logdir "${_dir}.tmp/logdir" --nj "${_nj}" --out_dir "${_dir}.tmp" \
            || exit 1
        rm -rf "${_dir}" && mv "${_dir}.tmp" "${_dir}"
    done
fi

if run_stage 13; then
    for dset in ${decode_sets}; do
        require_files 13 "made by stage 12" "${asr_exp}/${inference_tag}/${dset}/1best_recog/text"
    done
    # ESPnet's scoring: WER, CER, and TER in the pieces of bpe.model for token_type bpe (--score_opts: checked above)
    _score_args=(--cleaner "${cleaner}" --hyp_cleaner "${hyp_cleaner}")
    [[ "$nlsyms_txt" == none ]] || _score_args+=(--nlsyms_txt "${nlsyms_txt}")
    if [[ "$token_type" == bpe ]]; then
        require_files 13 "made by stage 5" "${bpemodel}"
        _score_args+=(--bpemodel "${bpemodel}")
    fi
    for dset in ${decode_sets}; do
        _dir="${asr_exp}/${inference_tag}/${dset}"
        log "Stage 13: scoring ${_dir}"
        ${python} -m espnet_lrsms.bin.score --data_dir "${data_feats}/${dset}" --decode_dir "${_dir}" \
            "${_score_args[@]}" --results_md "${asr_exp}"
    done
    if [[ -f local/score.sh ]]; then  # ESPnet's: the recipe's own scoring, after the standard one
        log "Stage 13: local/score.sh ${local_score_opts} ${asr_exp}"
        # shellcheck disable=SC2086
        local/score.sh ${local_score_opts} "${asr_exp}" \
            || { echo "$0: Stage 13: local/score.sh ${local_score_opts} ${asr_exp} failed" >&2; exit 1; }
    fi
    cat "${asr_exp}/RESULTS.md"
fi

packed_model=$(packed_model_of "${asr_exp}" "${inference_asr_model}")  # ESPnet's name
if run_stage 14; then
    _lm_opts=()
    if [[ "$use_lm" == true ]]; then  # as ESPnet's: the fused LM, its perplexities and training curves, in the pack
        require_files 14 "for --use_lm true: made by stage 7 or 9" "${fusion_lm_exp}/config.yaml" "${fusion_lm_exp}/${inference_lm}"
        _lm_opts=(--lm_train_config "${fusion_lm_exp}/config.yaml" --lm_file "${fusion_lm_exp}/${inference_lm}")
        for f in "${fusion_lm_exp}"/perplexity_*/ppl "${fusion_lm_exp}/images"; do
            [[ -e "$f" ]] && _lm_opts+=(--option "$f")
        done
    fi
    # as ESPnet's: a global_mvn model's feature statistics (the stats_file its config names) go into the pack
    _stats=$(${python} -c 'import sys, yaml; print(((yaml.safe_load(open(sys.argv[1])) or {}).get("normalize_conf") or {}).get("stats_file", ""))' "${asr_exp}/config.yaml" 2>/dev/null || true)
    [[ -z "$_stats" ]] || { require_files 14 "made by stage 10 (the stats_file of ${asr_exp}/config.yaml)" "${_stats}"; _lm_opts+=(--option "${_stats}"); }
    pack_model "${asr_exp}" "${inference_asr_model}" "" "${_lm_opts[@]}"
fi

if run_stage 15; then
    require_files 15 "made by stage 14, which runs with --skip_packing false" "${packed_model}"
    log "Stage 15: Hugging Face model repository from ${packed_model} -> ${asr_exp}/hf_repo"
    _push=()
    [[ -z "$hf_repo" ]] || _push=(--hf_repo "${hf_repo}" --push)
    ${python} -m espnet_lrsms.bin.hf_model_repo --pack "${packed_model}" --out_dir "${asr_exp}/hf_repo" \
        --corpus "$(basename "$(dirname "$PWD")")" --lang "${lang}" --task asr "${_push[@]}"
    [[ -n "$hf_repo" ]] || log "Stage 15: nothing uploaded (no --hf_repo)"
fi

# ========================== this project's: stage 17 ==========================

if run_stage 17 && use_lm 17; then
    _decode_root="${asr_exp}/${inference_tag}"
    if [[ ! -d "${_decode_root}/${lm_tune_set}/1best_recog" ]]; then
        echo "$0: stage 17 tunes the LM weight on ${lm_tune_set} (--lm_tune_set, default --valid_set), which has no" \
             "n-best decode in ${_decode_root}/${lm_tune_set}: add it to --test_sets and run stages 12-13, or name a" \
             "decoded dev set with --lm_tune_set" >&2
        exit 1
    fi
    _lms=("${lm_exp}:${lm_base_model}")
    for _cfg in "${lora_configs[@]}"; do _lms+=("$(lora_exp_of "${_cfg}"):${lora_model}"); done
    for _lm in "${_lms[@]}"; do
        _lm_dir=${_lm%%:*}
        require_files 17 "made by stage $([[ "$_lm_dir" == "$lm_exp" ]] && echo 7 || echo 9)" \
            "${_lm_dir}/config.yaml" "${_lm_dir}/${_lm#*:}"
    done
    _decode_opts=()
    for dset in ${test_sets}; do _decode_opts+=(--decode_dir "${_decode_root}/${dset}"); done
    for _lm in "${_lms[@]}"; do
        _lm_dir=${_lm%%:*}; _lm_file="${_lm_dir}/${_lm#*:}"
        _out="${_decode_root}_rescore_$(basename "${_lm_dir}")"
        log "Stage 17: rescoring ${test_sets} with ${_lm_file} (weights tuned on ${lm_tune_set}) -> ${_out}"
        # shellcheck disable=SC2086
        ${python} -m espnet_lrsms.bin.lm_rescore --lm_train_config "${_lm_dir}/config.yaml" --lm_file "${_lm_file}" \
            --tune_decode_dir "${_decode_root}/${lm_tune_set}" --tune_text "${data_feats}/${lm_tune_set}/text" \
            "${_decode_opts[@]}" --output_root "${_out}" --lm_weights "${lm_weights}" \
            --length_bonuses "${length_bonuses}" --data_root "${data_feats}" --results_md "${asr_exp}" \
            --robustness "${lm_robustness}" ${nprr_args}
    done
    cat "${asr_exp}/RESULTS.md"
fi

log "Successfully finished. [elapsed=${SECONDS}s]"
