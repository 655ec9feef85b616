#!/bin/sh
# Online backup of the SQLite ledger: sqlite3's .backup is consistent while billing writes.
# usage: backup-sqlite.sh DB_FILE BACKUP_DIR KEEP_DAYS
set -eu
db=$1; dir=$2; keep=${3:-30}
mkdir -p "$dir"
stamp=$(date +%Y%m%d-%H%M%S)
python3 - "$db" "$dir/fabmeter-$stamp.db" <<'PY'
import sqlite3, sys
src = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
dst = sqlite3.connect(sys.argv[2])
src.backup(dst)
dst.execute("PRAGMA integrity_check").fetchone()
dst.close(); src.close()
PY
gzip "$dir/fabmeter-$stamp.db"
find "$dir" -name 'fabmeter-*.db.gz' -mtime +"$keep" -delete
