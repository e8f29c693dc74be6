#!/usr/bin/env bash
# Install the system libraries PySide6 needs on Debian/Ubuntu, when they are absent.
# Offscreen tests need only a few; a real window on X11 needs the xcb set.
# Exits 1 only when apt-get failed (no network, say): the Makefile then tries again next time. Where it cannot
# install (not Linux, no apt-get, no sudo) it says what is needed once and exits 0.
set -u
[ "$(uname -s)" = Linux ] || exit 0  # macOS, Windows: the wheels carry what Qt needs
LDCONFIG=$(command -v ldconfig || echo /sbin/ldconfig)  # /sbin is not on a user's PATH on older Debian
[ -x "$LDCONFIG" ] || { echo "note: no ldconfig; not checking the system libraries Qt needs" >&2; exit 0; }
libs_pkgs=(
  "libEGL.so.1 libegl1" "libGL.so.1 libgl1" "libxkbcommon.so.0 libxkbcommon0"
  "libxkbcommon-x11.so.0 libxkbcommon-x11-0" "libfontconfig.so.1 libfontconfig1" "libdbus-1.so.3 libdbus-1-3"
  "libglib-2.0.so.0 libglib2.0-0" "libxcb-cursor.so.0 libxcb-cursor0" "libxcb-icccm.so.4 libxcb-icccm4"
  "libxcb-keysyms.so.1 libxcb-keysyms1" "libxcb-shape.so.0 libxcb-shape0" "libxcb-randr.so.0 libxcb-randr0"
  "libxcb-render-util.so.0 libxcb-render-util0" "libxcb-image.so.0 libxcb-image0" "libxcb-xkb.so.1 libxcb-xkb1"
  "libX11-xcb.so.1 libx11-xcb1" "libxcb-xinerama.so.0 libxcb-xinerama0"
)
missing=()
for pair in "${libs_pkgs[@]}"; do
  set -- $pair
  "$LDCONFIG" -p 2>/dev/null | grep -q "$1" || missing+=("$2")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "Qt needs these system libraries, install them with your package manager: ${missing[*]}" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null && sudo true; then SUDO="sudo"; else  # not allowed: say so once, not every make
    echo "Qt needs: ${missing[*]}; run as root: apt-get install ${missing[*]}" >&2; exit 0; fi
fi
echo "Installing the system libraries Qt (PySide6) needs: ${missing[*]}"
$SUDO apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
  || { echo "warning: could not install ${missing[*]}; the window may not open (offscreen tests still run)" >&2; exit 1; }
exit 0
