#!/usr/bin/env bash
# Seconds from launch until the Emotion Lens window is mapped on a (virtual) X display.
#   scripts/time_to_window.sh dist/EmotionLens/EmotionLens [args...]   (needs Debian's xvfb and xdotool)
set -euo pipefail
exe=$1; shift
Xvfb :97 -screen 0 1280x800x24 >/dev/null 2>&1 & xvfb=$!
trap 'kill $app $xvfb 2>/dev/null || true' EXIT
sleep 1
export DISPLAY=:97 QT_QPA_PLATFORM=xcb
start=$(date +%s.%N)
"$exe" "$@" >/dev/null 2>&1 & app=$!
until xdotool search --onlyvisible --name "Emotion Lens" >/dev/null 2>&1; do
  kill -0 $app 2>/dev/null || { echo "the app exited before showing a window" >&2; exit 1; }
  sleep 0.02
done
echo "window visible after $(awk -v a="$(date +%s.%N)" -v b="$start" 'BEGIN { printf "%.2f", a - b }') s"
