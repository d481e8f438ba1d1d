#!/usr/bin/env bash
# shellcheck disable=SC2034  # options are also read by name (${!name}: parse_options.sh, run_stage)
# The shared audio-visual (AVSR) recipe of espnet-lrsms, on the conventions of ../asr1/asr.sh: ESPnet's
# stage numbers and option names, run from this repository alone. A corpus' run.sh sets the defaults and
# calls this script; every option below can be given as --name value (or --name-with-hyphens value).
# The stages asr.sh has and this recipe lacks are logged as skipped.
#
#   1. data prep          data/<set>/{wav.scp,video.scp,text,utt2spk,spk2utt}: per clip a 16 kHz wav and
#                         a uint8 (T, 96, 96) mouth-ROI .npy at 25 fps (videos at other rates resampled,
#                         counted in the log), cropped around landmarks from --landmarks_dir or from the
#                         face detector (cached per clip; skipped.txt)
#   2-3.                  skipped: no speed perturbation (audio and video would drift apart), nothing to
#                         format (raw audio and ROI arrays are read as they are)
#   4. duration filter    ESPnet's --min_wav_duration/--max_wav_duration (0.1 and 20 s) on the training and
#                         validation sets, never the test sets: every table (video.scp too) keeps the same
#                         clips; left out: data/<set>/filtered.txt; the unfiltered set: data/<set>/org/
#   5. token list         SentencePiece (--bpemode, --nbpe) + ESPnet token list
#   6-9.                  skipped: no LM stages in this recipe
#  10. shape files        speech_shape / text_shape.bpe (+ video_shape) for ESPnet's batch samplers
#  11. training           espnet2.bin.launch -> espnet_lrsms.bin.avsr_train (resumes); in babble noise
#                         (--train_noise: data/<train_set>_noise/noise.scp -> ESPnet's --noise_scp);
#                         <avsr_exp>/run.sh re-runs the command from stage 11
#  12. decoding, clean    <avsr_exp>/<inference_tag>/<set>/{1best_recog,score_wer,score_cer,score_ter}: each
#                         set is scored as it is decoded (one process: avsr_snr_sweep; TER in the pieces of
#                         bpe.model, with asr.sh's stage-13 scorer)
#  13. scoring            <avsr_exp>/RESULTS.md (WER, CER, TER) from the score files of every decode directory
#  14. packing           with --skip_packing false (ESPnet's default true): ESPnet's pack of
#                         <exp>/<inference_avsr_model> + bpe.model + RESULTS.md (+ <exp>/images) ->
#                         <exp>/<exp's name>_<model less .pth>.zip, loaded by
#                         espnet_lrsms.avsr.transcriber.MP4Transcriber (an mp4 -> text)
#  15.                    skipped: no AVSR upload yet
#  17. noise robustness   this project's: noise (babble, or --noise_file) added to the test audio at each of
#                         --snrs: data/<set>_babble_snr<x>, decoded into <avsr_exp>/<inference_tag>_snr<x>/<set>;
#                         <avsr_exp>/RESULTS.md: WER by SNR as in the paper's Table III
# As in ESPnet, --skip_data_prep true leaves out stages 1-5, --skip_train 4-5 and 10-11, --skip_eval 12-13 (here
# also 17), --skip_packing 14 (true by default); --skip_stages "5 10" any others. Job runners: the recipe's cmd.sh.
#
# Every stage writes to a temporary name and renames, so an interrupted stage leaves nothing that a
# later stage would take as finished; re-running a stage redoes it (stage 1 reuses its per-clip cache,
# stage 17 its noisy copies).
set -euo pipefail

here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)  # egs2/TEMPLATE/avsr1, also via a symlink
# shellcheck source=utils/recipe_preamble.sh
. "${here}/utils/recipe_preamble.sh"  # run_args, log, path.sh, the general options, cmd.sh (shared with asr.sh)

# Data
corpus_root=""           # LRS3: holds pretrain/, trainval/, test/
train_set=""
valid_set=""
test_sets=""
on_error=stop            # stop | skip: what data prep does with a broken clip (skip: data/<set>/skipped.txt)
datadir=data
extra_train_sets=""      # directories of mp4 clips + transcripts (<clip>.txt or <dir>/text) merged into the
                         # training set, e.g. VoxCeleb2/AVSpeech with automatic transcripts (docs/avsr.md)
valid_speakers=""        # LRS3 dev speakers, one id per line (e.g. ESPnet's data/dev/spk2utt); default: the list
                         # ${datadir}/lrs3_dev_speakers.txt an earlier stage 1 wrote, else ESPnet's 92/8 rule
roi_method=auto          # auto: landmarks with --landmarks_dir, else detect | landmarks | detect (dlib face
                         # detector + 68-point model, inside the wheels) | as_is (the videos already show the mouth)
landmarks_dir=""         # per clip <split>/<speaker>/<clip>.pkl or .npy, 68-point landmarks (docs/avsr.md)
detect_upsample=0        # detect: upsampling steps before face detection (0: face boxes of about 60 px and larger)
detect_fallback=1        # detect: further upsampling steps for frames without a face (data/<set>/face_report.txt)
roi_size=96
crop_scale=2.0           # crop side / median mouth width (landmarks)
max_frame_mismatch=3     # audio/video length difference allowed, in 40 ms frames
min_wav_duration=0.1     # stage 4: training and validation clips not longer than this (seconds) are left out
max_wav_duration=20.0    # stage 4: ... and those not shorter than this (ESPnet's defaults; written 20.0: any
                         # number, not only whole ones)

# Tokenizer
token_type=bpe
nbpe=5000
bpemode=unigram
lang=en

# Training
expdir=exp
avsr_config=""
avsr_tag=""
avsr_args=""
avsr_stats_dir=""
train_noise=true         # train in babble, as the paper (Table III): --noise_file, else babble of train utterances
train_noise_db_range="-5_20"  # SNR in dB, drawn uniformly per utterance (ESPnet's --noise_db_range)
train_noise_prob=0.85    # share of training utterances that get noise (ESPnet's --noise_apply_prob)

# Decoding and noise
inference_config=""
inference_tag=""
inference_args=""
inference_avsr_model=valid.acc.ave.pth
inference_modality=av    # av | audio | video
snrs="-7.5 -2.5 2.5 7.5 12.5"
noise_file=""            # a noise recording at 16 kHz (e.g. NOISEX babble), for training and stage 6; default: babble
babble_speakers=6        # other test utterances summed into babble
noise_seed=0

help_message="Usage: $0 --corpus_root <LRS3> --train_set <set> --valid_set <set> --test_sets \"<set> ...\" --avsr_config <yaml> --inference_config <yaml> [options]
Options (ESPnet's spelling; --name-with-hyphens works too): --stage --stop_stage --skip_stages --skip_data_prep
  --skip_train --skip_eval --skip_packing (default true) --skip_upload_hf --cuda_cmd --ngpu --num_nodes --host --nj --inference_nj --gpu_inference
  --valid_speakers --extra_train_sets --roi_method auto|landmarks|detect|as_is --landmarks_dir --detect_upsample --detect_fallback --roi_size --crop_scale --max_frame_mismatch --on_error stop|skip
  --min_wav_duration --max_wav_duration
  --nbpe --bpemode --datadir --expdir --avsr_config --avsr_tag --avsr_args --inference_config --inference_tag
  --train_noise true|false --train_noise_db_range --train_noise_prob --inference_args --inference_avsr_model --inference_modality av|audio|video --snrs --noise_file --babble_speakers
  --noise_seed --python"

# shellcheck source=utils/parse_recipe_options.sh
. "${here}/utils/parse_recipe_options.sh"  # the options set, none positional, stages.sh, the --skip_* checked

for var in corpus_root train_set valid_set avsr_config; do
    [[ -n "${!var}" ]] || { echo "$0: --${var} is required" >&2; exit 1; }
done
[[ -f "$avsr_config" ]] || { echo "$0: --avsr_config ${avsr_config}: no such file" >&2; exit 1; }
if [[ -n "$inference_config" && ! -f "$inference_config" ]]; then
    echo "$0: --inference_config ${inference_config}: no such file" >&2; exit 1
fi
if [[ -n "$noise_file" && ! -f "$noise_file" ]]; then
    echo "$0: --noise_file ${noise_file}: no such file" >&2; exit 1
fi

if [[ "$token_type" != bpe ]]; then  # the AVSR stages pass bpe.model everywhere (decoding, TER scoring)
    echo "$0: --token_type ${token_type}: avsr.sh trains on SentencePiece pieces only (bpe); char and word are" \
         "asr.sh's" >&2
    exit 1
fi
bpedir="${datadir}/${lang}_token_list/${token_type}_${bpemode}${nbpe}"
bpemodel="${bpedir}/bpe.model"
token_list="${bpedir}/tokens.txt"
[[ -n "$avsr_stats_dir" ]] || avsr_stats_dir="${expdir}/avsr_stats_raw_${lang}_${token_type}${nbpe}"
# tags name what was overridden, as ESPnet's do (see asr.sh)
if [[ -z "$avsr_tag" ]]; then
    avsr_tag="$(basename "${avsr_config}" .yaml)_raw_${lang}_${token_type}${nbpe}"
    if [[ -n "$avsr_args" ]]; then avsr_tag+="$(echo "${avsr_args}" | sed -e "s/--/_/g" -e "s/[ |=/]//g")"; fi
fi
avsr_exp="${expdir}/avsr_${avsr_tag}"
if [[ -z "$inference_tag" ]]; then
    inference_tag="$(inference_tag_of "${inference_config}" "${inference_args}")"
    inference_tag+="_avsr_model_${inference_avsr_model%.pth}"
    [[ "$inference_modality" == av ]] || inference_tag+="_${inference_modality}"
fi

if run_stage 1; then
    [[ -d "$corpus_root" ]] || { echo "$0: Stage 1 needs the corpus root ${corpus_root} (--corpus_root, LRS3 in db.sh), which does not exist" >&2; exit 1; }
    [[ -z "$landmarks_dir" || -d "$landmarks_dir" ]] || { echo "$0: Stage 1: --landmarks_dir ${landmarks_dir}: no such directory" >&2; exit 1; }
    require_count 1 --nj "${nj}"
    log "Stage 1: audio + mouth ROIs (${roi_method}) for ${train_set} ${valid_set} ${test_sets} from ${corpus_root}"
    roi_opts=(--roi_method "${roi_method}" --roi_size "${roi_size}" --crop_scale "${crop_scale}"
              --detect_upsample "${detect_upsample}" --detect_fallback "${detect_fallback}")
    [[ -n "$landmarks_dir" ]] && roi_opts+=(--landmarks_dir "${landmarks_dir}")
    split_opts=()
    if [[ -n "$valid_speakers" ]]; then
        require_caller_file 1 --valid_speakers valid_speakers
        split_opts=(--valid_speakers "${valid_speakers}")
    fi
    if [[ -n "$extra_train_sets" ]]; then
        split_opts+=(--extra_into "${train_set}" --extra_train_sets)
        for _dir in ${extra_train_sets}; do
            [[ "$_dir" == /* || -d "$_dir" ]] || _dir="${LRSMS_CALLER_DIR:-.}/${_dir}"
            [[ -d "$_dir" ]] || { echo "$0: Stage 1: --extra_train_sets: ${_dir}: no such directory" >&2; exit 1; }
            split_opts+=("${_dir}")
        done
    fi
    # shellcheck disable=SC2086
    ${python} -m espnet_lrsms.bin.prepare_data lrs3 --task avsr --corpus_root "${corpus_root}" \
        --sets ${train_set} ${valid_set} ${test_sets} --data_dir "${datadir}" --nj "${nj}" --on_error "${on_error}" \
        --max_frame_mismatch "${max_frame_mismatch}" "${roi_opts[@]}" "${split_opts[@]}"
fi

if run_stage 2; then
    log "Stage 2: no speed perturbation in AVSR (the audio would drift from the video)"
fi
if run_stage 3; then
    log "Stage 3: nothing to format: the audio and the mouth ROI arrays are read as stage 1 wrote them"
fi
if run_stage 4; then
    require_count 4 --nj "${nj}"
    require_files 4 "made by stage 1" "${datadir}/${train_set}/wav.scp" "${datadir}/${valid_set}/wav.scp"
    log "Stage 4: duration filter (${min_wav_duration} s < duration < ${max_wav_duration} s) on ${datadir}/${train_set} and ${datadir}/${valid_set}"
    ${python} -m espnet_lrsms.bin.filter_durations --data_dir "${datadir}/${train_set}" "${datadir}/${valid_set}" \
        --min_wav_duration "${min_wav_duration}" --max_wav_duration "${max_wav_duration}" --nj "${nj}"
fi

if run_stage 5; then
    require_files 5 "made by stage 1" "${datadir}/${train_set}/text"
    log "Stage 5: ${bpemode} tokenizer with ${nbpe} pieces on ${datadir}/${train_set}/text -> ${bpedir}"
    ${python} -m espnet_lrsms.bin.train_tokenizer --text "${datadir}/${train_set}/text" \
        --out_dir "${bpedir}" --nbpe "${nbpe}" --mode "${bpemode}"
fi

for _n in 6 7 8 9; do
    if run_stage "$_n"; then log "Stage ${_n}: no LM stages in the AVSR recipe"; fi
done

if run_stage 10; then
    require_files 10 "made by stage 5" "${bpemodel}" "${token_list}"
    for dset in "${train_set}" "${valid_set}"; do
        require_files 10 "made by stage 1" "${datadir}/${dset}/wav.scp" "${datadir}/${dset}/video.scp" "${datadir}/${dset}/text"
    done
    log "Stage 10: shape files (speech, text, video) -> ${avsr_stats_dir}"
    ${python} -m espnet_lrsms.bin.make_shapes --bpemodel "${bpemodel}" --token_list "${token_list}" \
        --roi_size "${roi_size}" \
        --pair "${datadir}/${train_set}" "${avsr_stats_dir}/train" --pair "${datadir}/${valid_set}" "${avsr_stats_dir}/valid"
fi

if run_stage 11; then
    require_files 11 "made by stage 5" "${bpemodel}" "${token_list}"
    for dset in "${train_set}" "${valid_set}"; do
        require_files 11 "made by stage 1" "${datadir}/${dset}/wav.scp" "${datadir}/${dset}/video.scp" "${datadir}/${dset}/text"
    done
    for split in train valid; do
        require_files 11 "made by stage 10" "${avsr_stats_dir}/${split}/speech_shape" "${avsr_stats_dir}/${split}/text_shape.${token_type}"
    done
    log "Stage 11: training -> ${avsr_exp} (log: ${avsr_exp}/train.log; ngpu=${ngpu}, num_nodes=${num_nodes})"
    write_run_sh "${avsr_exp}" 11
    launch_opts=(--cmd "${cuda_cmd} --gpu ${ngpu}" --log "${avsr_exp}/train.log" --ngpu "${ngpu}"
                 --num_nodes "${num_nodes}" --init_file_prefix "${avsr_exp}/.dist_init_"
                 --multiprocessing_distributed true)
    [[ -n "$host" ]] && launch_opts+=(--host "${host}")
    data_opts=()
    for pair in "train:${train_set}" "valid:${valid_set}"; do
        split=${pair%%:*} dset=${pair#*:}
        data_opts+=(--"${split}"_data_path_and_name_and_type "${datadir}/${dset}/wav.scp,speech,sound"
                    --"${split}"_data_path_and_name_and_type "${datadir}/${dset}/video.scp,video,video_npy"
                    --"${split}"_data_path_and_name_and_type "${datadir}/${dset}/text,text,text"
                    --"${split}"_shape_file "${avsr_stats_dir}/${split}/speech_shape"
                    --"${split}"_shape_file "${avsr_stats_dir}/${split}/text_shape.${token_type}")
    done
    noise_opts=()
    if [[ "$train_noise" == true ]]; then
        noise_dir="${datadir}/${train_set}_noise"
        if [[ -n "$noise_file" ]]; then
            noise_src=(--noise "${noise_file}")
        else
            noise_src=(--babble_scp "${datadir}/${train_set}/wav.scp" --babble_speakers "${babble_speakers}" --seed "${noise_seed}")
        fi
        log "Training noise: ${noise_src[*]} -> ${noise_dir}/noise.scp (SNR ${train_noise_db_range} dB, p=${train_noise_prob})"
        ${python} -m espnet_lrsms.bin.avsr_make_noise_scp --out_dir "${noise_dir}" "${noise_src[@]}"
        noise_opts=(--noise_scp "${noise_dir}/noise.scp" --noise_apply_prob "${train_noise_prob}"
                    "--noise_db_range=${train_noise_db_range}")
    fi
    # shellcheck disable=SC2086
    ${python} -m espnet2.bin.launch "${launch_opts[@]}" -- \
        ${python} -m espnet_lrsms.bin.avsr_train \
            --use_preprocessor true \
            --token_type "${token_type}" --bpemodel "${bpemodel}" --token_list "${token_list}" \
            "${data_opts[@]}" "${noise_opts[@]}" \
            --resume true \
            --output_dir "${avsr_exp}" \
            --config "${avsr_config}" \
            ${avsr_args}
fi

# stages 12 and 17: one process per stage decodes (--inference_nj forked jobs), scores and writes RESULTS.md
sweep_opts=(--exp_dir "${avsr_exp}" --inference_tag "${inference_tag}" --asr_model_file "${avsr_exp}/${inference_avsr_model}"
            --data_root "${datadir}" --nj "${inference_nj}" --modality "${inference_modality}"
            --ngpu "$([[ "$gpu_inference" == true ]] && echo 1 || echo 0)" --bpemodel "${bpemodel}")
[[ -n "$inference_config" ]] && sweep_opts+=(--config "${inference_config}")
require_decoding_inputs() {  # <stage>: a trained model, and every test set prepared by stage 1
    require_count "$1" --inference_nj "${inference_nj}"
    require_words "$1" --test_sets "${test_sets}"
    require_files "$1" "made by stage 11, or set --inference_avsr_model" "${avsr_exp}/config.yaml" "${avsr_exp}/${inference_avsr_model}"
    require_files "$1" "made by stage 5; scoring's TER needs it" "${bpemodel}"
    local dset
    for dset in ${test_sets}; do
        require_files "$1" "made by stage 1 with the set in --test_sets" \
            "${datadir}/${dset}/wav.scp" "${datadir}/${dset}/video.scp" "${datadir}/${dset}/text"
    done
}

if run_stage 12; then
    require_decoding_inputs 12
    log "Stage 12: decoding ${test_sets} (clean, modality ${inference_modality}) -> ${avsr_exp}/${inference_tag}"
    # shellcheck disable=SC2086
    ${python} -m espnet_lrsms.bin.avsr_snr_sweep "${sweep_opts[@]}" --test_sets ${test_sets} --conditions clean \
        ${inference_args}
fi

if run_stage 13; then
    for dset in ${test_sets}; do
        require_files 13 "made by stage 12" "${avsr_exp}/${inference_tag}/${dset}/score_wer/result.txt"
    done
    log "Stage 13: ${avsr_exp}/RESULTS.md from the score files (stage 12 scores each set as it decodes it)"
    ${python} -m espnet_lrsms.bin.avsr_snr_sweep --exp_dir "${avsr_exp}" --results_only
fi

if run_stage 14; then  # -> <avsr_exp>/<avsr_exp's name>_<model less .pth>.zip, ESPnet's name
    pack_model "${avsr_exp}" "${inference_avsr_model}" "load: espnet_lrsms.avsr.transcriber.MP4Transcriber.from_pack"
fi
if run_stage 15; then log "Stage 15: no AVSR upload yet"; fi

if run_stage 17; then
    require_decoding_inputs 17
    require_words 17 --snrs "${snrs}"
    noise_opts=(--babble_speakers "${babble_speakers}" --seed "${noise_seed}")
    [[ -n "$noise_file" ]] && noise_opts+=(--noise_file "${noise_file}")
    log "Stage 17: ${noise_file:-babble} noise at SNR ${snrs} dB on ${test_sets} -> ${avsr_exp}/${inference_tag}_snr<x>"
    # shellcheck disable=SC2086
    ${python} -m espnet_lrsms.bin.avsr_snr_sweep "${sweep_opts[@]}" --test_sets ${test_sets} --conditions ${snrs} \
        "${noise_opts[@]}" ${inference_args}
fi

log "Successfully finished. [elapsed=${SECONDS}s]"
