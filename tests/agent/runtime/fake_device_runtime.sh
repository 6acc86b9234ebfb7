#!/bin/sh
# A stand-in for a vendor runtime speaking CommandRuntime's protocol (see
# agent/runtime/command_runtime.h). Its latency is "<batch><threads>.<run number>" ms, so
# tests can tell that arguments arrived and every run was answered.
# An NB201 architecture comes as --cell=<string>, any other as --space=<name> --arch=<string>.
#   --record=FILE      write "<space> <architecture> <batch> <threads>" to FILE
#   --fail-prepare     exit 3 instead of printing "ready"
#   --fail-run         answer every run with an error line
#   --garbage          answer every run with a non-number
#   --silent           never answer a run
space="" arch="" batch="" threads="" record="" mode=""
for arg in "$@"; do
  case "$arg" in
    --cell=*) space=nb201 arch="${arg#--cell=}" ;;
    --space=*) space="${arg#--space=}" ;;
    --arch=*) arch="${arg#--arch=}" ;;
    --batch=*) batch="${arg#--batch=}" ;;
    --threads=*) threads="${arg#--threads=}" ;;
    --record=*) record="${arg#--record=}" ;;
    --fail-prepare|--fail-run|--garbage|--silent) mode="$arg" ;;
  esac
done
if [ -z "$space" ] || [ -z "$arch" ] || [ -z "$batch" ] || [ -z "$threads" ]; then
  echo "fake_device_runtime: missing --cell (or --space and --arch)/--batch/--threads" >&2
  exit 2
fi
[ -n "$record" ] && echo "$space $arch $batch $threads" > "$record"
if [ "$mode" = --fail-prepare ]; then
  echo "fake_device_runtime: cannot load the model" >&2
  exit 3
fi
echo "ready fake device"
runs=0
while read -r request; do
  if [ "$request" != run ]; then
    echo "error unknown request: $request"
    continue
  fi
  runs=$((runs + 1))
  case "$mode" in
    --fail-run) echo "error device lost" ;;
    --garbage) echo "fast" ;;
    --silent) sleep 30 ;;
    *) echo "$batch$threads.$runs" ;;
  esac
done
