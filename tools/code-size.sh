#!/bin/sh
# code-size.sh [DIR]: the numbers issue 11's note asks for, for one source
# directory (default service/): how many files, the largest file and the
# largest function, both in lines. Needs universal-ctags (its end: field).
dir=${1:-service}
echo "files: $(find "$dir" -maxdepth 1 -type f | wc -l) in $dir/"
wc -l "$dir"/*.c "$dir"/*.h | grep -v ' total$' | sort -n | tail -1 | awk '{ print "largest file: " $2 ", " $1 " lines" }'
ctags -x --_xformat='%N %F %n %{end}' --kinds-C=f -o - "$dir"/*.c 2>/dev/null |
        awk '{ print $4 - $3 + 1, $1, $2 ":" $3 }' | sort -n | tail -1 |
        awk '{ print "largest function: " $2 " (" $3 "), " $1 " lines" }'
