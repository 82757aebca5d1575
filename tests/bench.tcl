# bench.tcl --
#
#	Speed of the mmap channel next to Tcl's own file channel and, where it
#	makes sense, Memchan's in-memory channel.  This is not a test file:
#	tests/all.tcl runs only *.test files, so `make test` never runs it.
#	Run it with the built package on auto_path:
#
#	    make bench BENCHFLAGS="-rounds 5"
#	    TCLLIBPATH=/path/to/build tclsh8.6 tests/bench.tcl ?option ...?
#
#	Options:
#	    -rounds N     measured rounds per case; medians are reported
#	                  (default 3, or 1 with -small)
#	    -small        tiny sizes and counts, for a smoke run in CI; the
#	                  environment variable BENCH_SMALL=1 does the same
#	    -cases LIST   run only these cases: logw rand bulk lines mapcost
#	                  region log sqlite
#	    -dir DIR      make the scratch directory inside DIR (default
#	                  $TMPDIR, else /tmp); it is removed at the end
#
#	The sqlite case sets mmap::log against SQLite (Tcl package sqlite3,
#	Debian libsqlite3-tcl: installed with apt-get when missing and this
#	runs as root; its rows are skipped, with the reason, when it cannot be
#	had) and against a text file, appending and reading the newest
#	records, each run in a fresh tclsh.
#
#	Exit status: 0 when every case ran, whether or not the speed targets
#	were met; 1 on a usage or script error; 2 when contenders disagreed
#	about the bytes they read or wrote (a correctness problem, not a
#	speed one).
#
#	Method.  Each case first runs every contender once untimed, checking
#	that they all see (or write) the same bytes; that run also leaves every
#	contender equally warm.  Then come the measured rounds: in each round
#	every contender runs once, and the order rotates from round to round so
#	that none of them always goes first.  Only the operation under test
#	sits between the two [clock microseconds] calls: opening, mapping,
#	filling a memchan and closing happen outside, except in the map cost
#	case, where they are the operation under test.

package require Tcl 8.6
package require mmap

namespace eval ::bench {
    # Settings: sizes, counts, paths (filled in by [configure]).
    variable cfg
    array set cfg {}

    # Rows of the result table, in order; each is a dict (see [addRow]).
    variable rows {}

    # Free-form remarks printed under the tables.
    variable notes {}

    # Set when two contenders disagree about the data.
    variable mismatch 0

    # Whole-file contents, kept while a case needs them to fill memchans.
    variable fileCache
    array set fileCache {}

    variable allCases {logw rand bulk lines mapcost region log sqlite}
}

# ----------------------------------------------------------------------------
# Settings and command line
# ----------------------------------------------------------------------------

proc ::bench::usage {} {
    return "usage: bench.tcl ?-rounds N? ?-small? ?-cases {logw rand bulk\
	lines mapcost region log sqlite}? ?-dir DIR?"
}

# usageError message --
#	A command line mistake: reported with the usage text, no stack trace.
proc ::bench::usageError {message} {
    return -code error -errorcode {BENCH USAGE} "$message\n[usage]"
}

# parseArgs argv --
#	Fill cfg(rounds), cfg(small), cfg(cases), cfg(parentDir) from the
#	command line and the environment.  Errors carry the usage text.
proc ::bench::parseArgs {argv} {
    variable cfg
    variable allCases
    global env

    set small [expr {[info exists env(BENCH_SMALL)]
		     && [string is true -strict $env(BENCH_SMALL)]}]
    set rounds {}
    set cases $allCases
    set parent [expr {[info exists env(TMPDIR)] && $env(TMPDIR) ne ""
		      ? $env(TMPDIR) : "/tmp"}]

    while {[llength $argv]} {
	set argv [lassign $argv opt]
	switch -exact -- $opt {
	    -small { set small 1 }
	    -rounds - -cases - -dir {
		if {![llength $argv]} {
		    usageError "option $opt needs a value"
		}
		set argv [lassign $argv value]
		switch -- $opt {
		    -rounds {
			if {![string is integer -strict $value]
				|| $value < 1} {
			    usageError "-rounds wants a whole number of at\
				least 1, not \"$value\""
			}
			set rounds $value
		    }
		    -cases {
			if {[catch {llength $value}]} {
			    usageError "-cases wants a list of case names"
			}
			foreach c $value {
			    if {$c ni $allCases} {
				usageError "unknown case \"$c\""
			    }
			}
			if {![llength $value]} {
			    usageError "-cases wants at least one case"
			}
			set cases $value
		    }
		    -dir { set parent $value }
		}
	    }
	    default {
		usageError "unknown option \"$opt\""
	    }
	}
    }
    if {$rounds eq ""} {
	set rounds [expr {$small ? 1 : 3}]
    }
    set cfg(small) $small
    set cfg(rounds) $rounds
    # Keep the order in which the table lists cases, whatever the user typed.
    set cfg(cases) [lmap c $allCases {expr {$c in $cases ? $c : [continue]}}]
    set cfg(parentDir) $parent
}

# configure --
#	Sizes and counts for a full run or for a smoke run (-small).
proc ::bench::configure {} {
    variable cfg
    set MiB [expr {1 << 20}]
    if {!$cfg(small)} {
	array set cfg [list \
	    binSize		[expr {256 * $MiB}] \
	    blockSize		$MiB \
	    lineCount		1000000 \
	    logSize		[expr {64 * $MiB}] \
	    logwCount		300000 \
	    logwSyncCount	3000 \
	    randCount		100000 \
	    mapIters		1000 \
	    incrCount		1000000 \
	    lockCount		20000 \
	    takeoverCount	10 \
	    pingCount		2000 \
	    bigMapSize		[expr {4 << 30}] \
	    mlogCount		200000 \
	    mlogReadCount	100000 \
	    mlogSize		[expr {32 * $MiB}] \
	    sqlAppendCount	100000 \
	    sqlReadCount	100000]
    } else {
	array set cfg [list \
	    binSize		$MiB \
	    blockSize		[expr {64 * 1024}] \
	    lineCount		10000 \
	    logSize		$MiB \
	    logwCount		1000 \
	    logwSyncCount	100 \
	    randCount		1000 \
	    mapIters		100 \
	    incrCount		10000 \
	    lockCount		1000 \
	    takeoverCount	3 \
	    pingCount		2000 \
	    bigMapSize		[expr {64 * $MiB}] \
	    mlogCount		2000 \
	    mlogReadCount	1000 \
	    mlogSize		$MiB \
	    sqlAppendCount	2000 \
	    sqlReadCount	1000]
    }
    # A 4 GiB mapping needs a 64-bit address space.
    if {$::tcl_platform(pointerSize) < 8 && $cfg(bigMapSize) > (1 << 30)} {
	set cfg(bigMapSize) [expr {1 << 30}]
    }
    set cfg(smallMapSize)	4096
    set cfg(randLen)	256
    set cfg(mapReadLen)	4096
    # 63 characters, so 64 bytes with the newline [puts] adds.
    set cfg(record) [format %-63.63s \
	"2024-06-01T12:00:00.000000Z INFO bench: cyclic log record, fixed"]
    set cfg(recordLen) [expr {[string length $cfg(record)] + 1}]
    foreach key {logwCount logwSyncCount} {
	if {$cfg($key) * $cfg(recordLen) > $cfg(logSize)} {
	    # Past the end the file channel would grow the file while the
	    # mmap channel wraps: no longer the same work.
	    error "$key records do not fit in the log file"
	}
    }
}

# ----------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------

proc ::bench::progress {text} {
    puts stderr $text
    flush stderr
}

# sizeText bytes --
#	"4GiB", "256MiB", "4KiB" or plain bytes, for labels.
proc ::bench::sizeText {bytes} {
    foreach {unit shift} {GiB 30 MiB 20 KiB 10} {
	if {$bytes >= (1 << $shift) && $bytes % (1 << $shift) == 0} {
	    return "[expr {$bytes >> $shift}]$unit"
	}
    }
    return "${bytes}B"
}

proc ::bench::median {values} {
    set sorted [lsort -real $values]
    set n [llength $sorted]
    set mid [expr {$n / 2}]
    if {$n % 2} {
	return [lindex $sorted $mid]
    }
    return [expr {([lindex $sorted $mid-1] + [lindex $sorted $mid]) / 2.0}]
}

# rotate list k --
#	The list turned left k places: round k starts with a different
#	contender than round k-1.
proc ::bench::rotate {list k} {
    set k [expr {$k % [llength $list]}]
    return [concat [lrange $list $k end] [lrange $list 0 $k-1]]
}

# digest string --
#	Length and CRC of a string of characters.  Characters go through
#	UTF-8 first so that nothing is lost for characters above U+00FF
#	(default translation/encoding turns binary bytes into such characters).
proc ::bench::digest {string} {
    return [list [string length $string] \
		[zlib crc32 [encoding convertto utf-8 $string]]]
}

proc ::bench::readFileBytes {path {offset 0} {count -1}} {
    set f [open $path r]
    try {
	fconfigure $f -translation binary
	seek $f $offset
	if {$count < 0} {
	    return [read $f]
	}
	return [read $f $count]
    } finally {
	close $f
    }
}

# fileBytes path --
#	The whole file, read once and kept until [forgetFiles]: a case fills
#	one memchan per run, and rereading 256 MiB each time only adds noise.
proc ::bench::fileBytes {path} {
    variable fileCache
    if {![info exists fileCache($path)]} {
	set fileCache($path) [readFileBytes $path]
    }
    return $fileCache($path)
}

proc ::bench::forgetFiles {} {
    variable fileCache
    array unset fileCache
}

# warmFile path ?limit? --
#	Read the file (or its first $limit bytes) so that its pages are in
#	the page cache before anyone is timed on it.
proc ::bench::warmFile {path {limit -1}} {
    set f [open $path r]
    fconfigure $f -translation binary
    set left $limit
    while {$left != 0} {
	set want [expr {$left < 0 || $left > (1 << 20) ? (1 << 20) : $left}]
	set got [string length [read $f $want]]
	if {$got == 0} {
	    break
	}
	if {$left > 0} {
	    incr left -$got
	}
    }
    close $f
}

# ----------------------------------------------------------------------------
# Test data
# ----------------------------------------------------------------------------

# randomBytes size seed --
#	$size reproducible pseudo-random bytes.  Tcl's generator makes 32 bits
#	per call, which is fast enough for the 1 MiB block the big file
#	repeats; a fixed seed keeps the data (and so the effect of the default
#	end-of-line translation on it) the same from run to run.
proc ::bench::randomBytes {size seed} {
    expr {srand($seed)}
    set words {}
    for {set i 0} {$i < ($size + 3) / 4} {incr i} {
	lappend words [expr {int(rand() * 4294967296.0)}]
    }
    return [string range [binary format i* $words] 0 $size-1]
}

# randomText size seed --
#	$size printable ASCII characters (no CR or LF).
proc ::bench::randomText {size seed} {
    expr {srand($seed)}
    set codes {}
    for {set i 0} {$i < $size} {incr i} {
	lappend codes [expr {32 + int(rand() * 95)}]
    }
    # A character string, not a byte array: appending pieces of a byte
    # array to a string would convert it back and forth on every append.
    return [encoding convertfrom iso8859-1 [binary format c* $codes]]
}

proc ::bench::writeBinary {path args} {
    set f [open $path w]
    fconfigure $f -translation binary
    foreach chunk $args {
	puts -nonewline $f $chunk
    }
    close $f
}

# makeBinaryFile path size blockSize --
#	The big binary file: one random block written over and over.
proc ::bench::makeBinaryFile {path size blockSize} {
    set block [randomBytes $blockSize 20240601]
    set f [open $path w]
    fconfigure $f -translation binary
    for {set done 0} {$done < $size} {incr done $blockSize} {
	puts -nonewline $f [string range $block 0 [expr {$size - $done - 1}]]
    }
    close $f
}

# makeTextFile path count --
#	$count lines of 0 to 119 printable characters each, cut at random
#	places from a random pool so that no two stretches look alike.
proc ::bench::makeTextFile {path count} {
    set poolSize 65536
    set pool [randomText $poolSize 7]
    expr {srand(11)}
    set f [open $path w]
    fconfigure $f -translation lf -encoding ascii
    set chunk {}
    for {set i 0} {$i < $count} {incr i} {
	set len [expr {int(rand() * 120)}]
	set from [expr {int(rand() * ($poolSize - $len))}]
	append chunk [string range $pool $from [expr {$from + $len - 1}]] \n
	# Counted in lines: [string length] on a growing string recounts
	# its characters each time, which made this loop quadratic.
	if {$i % 8192 == 8191} {
	    puts -nonewline $f $chunk
	    set chunk {}
	}
    }
    puts -nonewline $f $chunk
    close $f
}

# makeZeroFile path size --
#	The cyclic log: real zero bytes, not a hole, so that writes into it
#	need no block allocation (a log is made once with its final size).
proc ::bench::makeZeroFile {path size} {
    set block [string repeat \0 [expr {1 << 20}]]
    set f [open $path w]
    fconfigure $f -translation binary
    for {set done 0} {$done < $size} {incr done [string length $block]} {
	puts -nonewline $f [string range $block 0 [expr {$size - $done - 1}]]
    }
    close $f
}

# makeMapFiles small big --
#	The two map cost files hold the same first 4 KiB (ASCII, so the
#	default translation reads exactly 4096 bytes from both); the big one
#	is sparse past that.
proc ::bench::makeMapFiles {smallPath bigPath bigSize} {
    variable cfg
    set head [randomText $cfg(smallMapSize) 3]
    writeBinary $smallPath $head
    writeBinary $bigPath $head
    set f [open $bigPath r+]
    chan truncate $f $bigSize
    close $f
    if {[file size $bigPath] != $bigSize} {
	error "could not make the $bigSize-byte sparse file $bigPath"
    }
}

# makeData dir --
#	Create the files the selected cases need, warm the page cache with
#	them, and return how long it all took in seconds.
proc ::bench::makeData {dir} {
    variable cfg
    set cfg(binPath) [file join $dir random.bin]
    set cfg(textPath) [file join $dir lines.txt]
    set cfg(logPath) [file join $dir cyclic.log]
    set cfg(mlogPath) [file join $dir records.mlog]
    set cfg(appendPath) [file join $dir append.txt]
    set cfg(smallMapPath) [file join $dir map-small.bin]
    set cfg(bigMapPath) [file join $dir map-big.bin]

    set t0 [clock microseconds]
    set cases $cfg(cases)
    if {"rand" in $cases || "bulk" in $cases || "region" in $cases} {
	progress "making [sizeText $cfg(binSize)] binary file"
	makeBinaryFile $cfg(binPath) $cfg(binSize) $cfg(blockSize)
	warmFile $cfg(binPath)
    }
    if {"lines" in $cases} {
	progress "making $cfg(lineCount)-line text file"
	makeTextFile $cfg(textPath) $cfg(lineCount)
	warmFile $cfg(textPath)
    }
    if {"logw" in $cases} {
	progress "making [sizeText $cfg(logSize)] log file"
	makeZeroFile $cfg(logPath) $cfg(logSize)
	warmFile $cfg(logPath)
    }
    if {"log" in $cases} {
	progress "making $cfg(mlogReadCount)-line text file for log reads"
	makeTextFile $cfg(textPath) $cfg(mlogReadCount)
	warmFile $cfg(textPath)
    }
    if {"mapcost" in $cases} {
	progress "making map cost files"
	makeMapFiles $cfg(smallMapPath) $cfg(bigMapPath) $cfg(bigMapSize)
	warmFile $cfg(smallMapPath)
	# Only the first 4 KiB of the sparse file is ever read.
	warmFile $cfg(bigMapPath) $cfg(mapReadLen)
    }
    return [expr {([clock microseconds] - $t0) / 1e6}]
}

# makeScratchDir parent --
#	A fresh directory of our own inside $parent (never $parent itself,
#	which the cleanup would otherwise delete).
proc ::bench::makeScratchDir {parent} {
    if {![file isdirectory $parent]} {
	return -code error -errorcode {BENCH USAGE} \
	    "no such directory: $parent"
    }
    for {set n 0} {1} {incr n} {
	set dir [file join [file normalize $parent] mmap-bench-[pid]-$n]
	if {![file exists $dir]} {
	    file mkdir $dir
	    return $dir
	}
    }
}

# ----------------------------------------------------------------------------
# Contenders: opening a channel of each kind on a file (never timed)
# ----------------------------------------------------------------------------

# openNative path writable --
#	Tcl's file channel with its defaults.
proc ::bench::openNative {path writable} {
    return [open $path [expr {$writable ? "r+" : "r"}]]
}

# openMmap path writable --
#	The mmap channel with its defaults; shared when it is to write, so
#	that writes reach the file as the native channel's do.  The source
#	channel is not needed once the mapping exists.
proc ::bench::openMmap {path writable} {
    set src [open $path [expr {$writable ? "r+" : "r"}]]
    try {
	if {$writable} {
	    return [mmap -shared $src]
	}
	return [mmap $src]
    } finally {
	close $src
    }
}

# openMemchan path --
#	A memchan holding the bytes of the file, positioned at its start,
#	with Memchan's own defaults.  The bytes must go in untranslated, so
#	the defaults are set aside for the fill and put back afterwards.
proc ::bench::openMemchan {path} {
    set ch [memchan]
    set defaults [fconfigure $ch]
    fconfigure $ch -translation binary -blocking 1
    puts -nonewline $ch [fileBytes $path]
    flush $ch
    seek $ch 0
    # -translation also resets -encoding and -eofchar, so it goes first.
    foreach opt {-translation -encoding -eofchar -blocking -buffering
		 -buffersize} {
	fconfigure $ch $opt [dict get $defaults $opt]
    }
    foreach opt {-translation -encoding -eofchar -blocking -buffering} {
	if {[fconfigure $ch $opt] ne [dict get $defaults $opt]} {
	    error "could not restore memchan $opt after filling it"
	}
    }
    return $ch
}

# openFor who path writable --
#	A channel of contender $who on $path.
proc ::bench::openFor {who path {writable 0}} {
    switch -exact -- $who {
	native	{ return [openNative $path $writable] }
	mmap	{ return [openMmap $path $writable] }
	memchan { return [openMemchan $path] }
    }
    error "unknown contender \"$who\""
}

# ----------------------------------------------------------------------------
# Timed operations: nothing but the operation between the two clock reads
# ----------------------------------------------------------------------------

proc ::bench::timePuts {ch msg count} {
    set t0 [clock microseconds]
    for {set i 0} {$i < $count} {incr i} {
	puts $ch $msg
    }
    return [expr {[clock microseconds] - $t0}]
}

proc ::bench::timeSeekReads {ch offsets len} {
    set t0 [clock microseconds]
    foreach off $offsets {
	seek $ch $off
	read $ch $len
    }
    return [expr {[clock microseconds] - $t0}]
}

proc ::bench::timeReadAll {ch} {
    set t0 [clock microseconds]
    set data [read $ch]
    # The big string is freed when the proc returns, after the clock stops.
    return [expr {[clock microseconds] - $t0}]
}

proc ::bench::timeGets {ch} {
    set t0 [clock microseconds]
    while {[gets $ch line] >= 0} {}
    return [expr {[clock microseconds] - $t0}]
}

# timeMapCycles who path iters len --
#	The whole life of a channel, $iters times: open, (map,) read $len
#	characters, close.  Here opening and closing are what is measured.
proc ::bench::timeMapCycles {who path iters len} {
    if {$who eq "mmap"} {
	set t0 [clock microseconds]
	for {set i 0} {$i < $iters} {incr i} {
	    set f [open $path r]
	    set m [mmap $f]
	    close $f
	    read $m $len
	    close $m
	}
    } else {
	set t0 [clock microseconds]
	for {set i 0} {$i < $iters} {incr i} {
	    set f [open $path r]
	    read $f $len
	    close $f
	}
    }
    return [expr {[clock microseconds] - $t0}]
}

# ----------------------------------------------------------------------------
# Measuring: check run, rounds, medians
# ----------------------------------------------------------------------------

# measure title keys cmd --
#	Run {*}$cmd key check for every key: first once each with check=1
#	(untimed; returns a digest of the data seen, which must be the same
#	for all keys), then $cfg(rounds) rounds with check=0 (returns
#	microseconds).  Returns a dict key -> list of seconds, one per round.
proc ::bench::measure {title keys cmd} {
    variable cfg
    variable mismatch
    variable notes

    progress "$title: checking [join $keys {, }]"
    set digests {}
    foreach key $keys {
	dict set digests $key [{*}$cmd $key 1]
    }
    set first [lindex $keys 0]
    foreach key [lrange $keys 1 end] {
	if {[dict get $digests $key] ne [dict get $digests $first]} {
	    set mismatch 1
	    lappend notes "DATA MISMATCH in $title:\
		$first saw {[dict get $digests $first]},\
		$key saw {[dict get $digests $key]}"
	}
    }

    set times {}
    for {set r 0} {$r < $cfg(rounds)} {incr r} {
	progress "$title: round [expr {$r + 1}]/$cfg(rounds)"
	foreach key [rotate $keys $r] {
	    dict lappend times $key [{*}$cmd $key 0]
	}
    }
    return [dict map {key us} $times {lmap t $us {expr {$t / 1e6}}}]
}

# addRow label seconds ops unit ?native/mmap target? ?extra target? --
#	One line of the result table.  $seconds maps contender -> the
#	seconds of each round; missing contenders print as n/a.  The
#	mmap/memchan target applies wherever both numbers exist.
proc ::bench::addRow {label seconds ops unit {nmTarget {}} {extra {}}} {
    variable rows
    lappend rows [dict create label $label seconds $seconds ops $ops \
		      unit $unit nmTarget $nmTarget extra $extra]
}

# ----------------------------------------------------------------------------
# Cases
# ----------------------------------------------------------------------------

# logwRun count key check --
#	One run of $count log records written from the start of the log
#	file.  key is native, mmap, mmap-async, mmap-sync or memchan.
proc ::bench::logwRun {count key check} {
    variable cfg
    set path $cfg(logPath)
    switch -glob -- $key {
	native {
	    set ch [openNative $path 1]
	    # Same promise as the mmap channel: each record is in the file
	    # (the page cache) when [puts] returns.
	    fconfigure $ch -buffering none
	}
	mmap-* {
	    set ch [openMmap $path 1]
	    fconfigure $ch -sync [string range $key 5 end]
	}
	default { set ch [openFor $key $path 1] }
    }
    set us [timePuts $ch $cfg(record) $count]
    if {!$check} {
	close $ch
	return $us
    }
    # What was written, read back the way that is independent of the
    # contender: from the file, or from the memchan's own bytes.
    set end [tell $ch]
    set len [expr {$count * $cfg(recordLen)}]
    if {$key eq "memchan"} {
	fconfigure $ch -translation binary
	seek $ch 0
	set written [read $ch $len]
	close $ch
    } else {
	close $ch
	set written [readFileBytes $path 0 $len]
    }
    set ok [expr {$written eq [string repeat $cfg(record)\n $count]}]
    if {!$ok} {
	# [measure] only compares contenders with each other; this catches
	# them all being wrong alike.
	variable mismatch 1
	variable notes
	lappend notes "DATA MISMATCH in logw: $key did not leave the\
	    $count records it wrote in the log"
    }
    return [list end $end matches-records $ok]
}

# syncSupported --
#	Whether this build's mmap channel has the -sync option yet.
proc ::bench::syncSupported {} {
    variable cfg
    set m [openMmap $cfg(logPath) 1]
    set ok [expr {![catch {fconfigure $m -sync async}]}]
    close $m
    return $ok
}

proc ::bench::caseLogw {withMemchan} {
    variable cfg
    variable notes
    set n $cfg(logwCount)
    set keys [expr {$withMemchan ? {native mmap memchan} : {native mmap}}]
    set s [measure "logw" $keys [list ::bench::logwRun $n]]
    addRow "logw ${n}x$cfg(recordLen)B" $s $n "µs/record" 6.0

    if {![syncSupported]} {
	lappend notes "logw-async, logw-sync: n/a, this build's mmap channel\
	    has no -sync option (fconfigure -sync async failed)"
	set syncCount $cfg(logwSyncCount)
	addRow "logw-async ${n}x$cfg(recordLen)B" {} $n "µs/record"
	addRow "logw-sync ${syncCount}x$cfg(recordLen)B" {} $syncCount \
	    "µs/record"
	return
    }
    foreach {mode count} [list async $n sync $cfg(logwSyncCount)] {
	set s [measure "logw-$mode" [list native mmap-$mode] \
		   [list ::bench::logwRun $count]]
	addRow "logw-$mode ${count}x$cfg(recordLen)B" \
	    [dict create native [dict get $s native] \
		 mmap [dict get $s mmap-$mode]] $count "µs/record"
    }
}

# randOffsets --
#	The same pseudo-random read positions for every contender.
proc ::bench::randOffsets {} {
    variable cfg
    expr {srand(424242)}
    set top [expr {$cfg(binSize) - $cfg(randLen) + 1}]
    set offsets {}
    for {set i 0} {$i < $cfg(randCount)} {incr i} {
	lappend offsets [expr {int(rand() * $top)}]
    }
    return $offsets
}

proc ::bench::randRun {offsets who check} {
    variable cfg
    set ch [openFor $who $cfg(binPath)]
    try {
	if {!$check} {
	    return [timeSeekReads $ch $offsets $cfg(randLen)]
	}
	set seen {}
	foreach off $offsets {
	    seek $ch $off
	    append seen [read $ch $cfg(randLen)]
	}
	return [digest $seen]
    } finally {
	close $ch
    }
}

proc ::bench::caseRand {contenders} {
    variable cfg
    set s [measure "rand" $contenders [list ::bench::randRun [randOffsets]]]
    addRow "rand $cfg(randCount)x$cfg(randLen)B" $s $cfg(randCount) \
	"µs/seek+read" 2.5
}

proc ::bench::bulkRun {who check} {
    variable cfg
    set ch [openFor $who $cfg(binPath)]
    try {
	if {!$check} {
	    return [timeReadAll $ch]
	}
	return [digest [read $ch]]
    } finally {
	close $ch
    }
}

proc ::bench::caseBulk {contenders} {
    variable cfg
    set s [measure "bulk" $contenders ::bench::bulkRun]
    addRow "bulk [sizeText $cfg(binSize)]" $s \
	[expr {$cfg(binSize) / double(1 << 20)}] "µs/MiB" 1.5
}

proc ::bench::linesRun {who check} {
    variable cfg
    set ch [openFor $who $cfg(textPath)]
    try {
	if {!$check} {
	    return [timeGets $ch]
	}
	set count 0
	set seen {}
	while {[gets $ch line] >= 0} {
	    incr count
	    append seen $line \n
	}
	return [list $count [digest $seen]]
    } finally {
	close $ch
    }
}

proc ::bench::caseLines {contenders} {
    variable cfg
    set s [measure "lines" $contenders ::bench::linesRun]
    addRow "lines $cfg(lineCount)" $s $cfg(lineCount) "µs/line" 1.0
}

# mapRun key check --
#	key is {native|mmap}-{small|big}.
proc ::bench::mapRun {key check} {
    variable cfg
    lassign [split $key -] who size
    set path [expr {$size eq "big" ? $cfg(bigMapPath) : $cfg(smallMapPath)}]
    if {!$check} {
	return [timeMapCycles $who $path $cfg(mapIters) $cfg(mapReadLen)]
    }
    set ch [openFor $who $path]
    set head [read $ch $cfg(mapReadLen)]
    close $ch
    return [digest $head]
}

proc ::bench::caseMapCost {} {
    variable cfg
    set s [measure "mapcost" {mmap-small mmap-big native-small native-big} \
	       ::bench::mapRun]
    set smallText [sizeText $cfg(smallMapSize)]
    set bigText [sizeText $cfg(bigMapSize)]
    foreach size {small big} {
	set secs($size) [dict create native [dict get $s native-$size] \
			     mmap [dict get $s mmap-$size]]
    }
    set ratio [ratio [median [dict get $s mmap-big]] \
		   [median [dict get $s mmap-small]]]
    addRow "map $smallText x$cfg(mapIters)" $secs(small) $cfg(mapIters) \
	"µs/cycle"
    addRow "map $bigText x$cfg(mapIters)" $secs(big) $cfg(mapIters) \
	"µs/cycle" {} [list "$bigText/$smallText" $ratio 2.0]
}

# ----------------------------------------------------------------------------
# The region commands (mmap::read, mmap::incr, mmap::lock, mmap::wait/wake)
# against what a script would use without them.  "native" is that other
# way: seek + read on a file channel, Thread's tsv::incr, TclX flock on a
# file, a pair of pipes.
# ----------------------------------------------------------------------------

# regionReadRun offsets fresh who check --
#	$cfg(randCount) random 256-byte reads: seek + read on a file channel
#	(native) or mmap::read (mmap).  Warm: the reads ran once, untimed, on
#	the same channel (the mapping's pages are in place); fresh: a channel
#	opened just before.
proc ::bench::regionReadRun {offsets fresh who check} {
    variable cfg
    set len $cfg(randLen)
    set ch [openFor $who $cfg(binPath)]
    try {
	if {$who eq "native"} {
	    # mmap::read gives bytes; so does this, and faster than text.
	    fconfigure $ch -translation binary
	    set read {seek $ch $off; read $ch $len}
	} else {
	    set read {mmap::read $ch $off $len}
	}
	if {$check} {
	    set seen {}
	    foreach off $offsets {
		append seen [eval $read]
	    }
	    return [digest $seen]
	}
	if {!$fresh} {
	    foreach off $offsets {
		eval $read
	    }
	}
	# The loop bodies are literal so that both get compiled alike.
	set t0 [clock microseconds]
	if {$who eq "native"} {
	    foreach off $offsets {
		seek $ch $off
		read $ch $len
	    }
	} else {
	    foreach off $offsets {
		mmap::read $ch $off $len
	    }
	}
	return [expr {[clock microseconds] - $t0}]
    } finally {
	close $ch
    }
}

# regionIncrRun who check --
#	$cfg(incrCount) increments of one counter: tsv::incr (native) or
#	mmap::incr on a -shared mapping (mmap).  Returns the final value when
#	checking.
proc ::bench::regionIncrRun {who check} {
    variable cfg
    set count $cfg(incrCount)
    if {$who eq "native"} {
	tsv::set bench counter 0
	set t0 [clock microseconds]
	for {set i 0} {$i < $count} {incr i} {
	    tsv::incr bench counter
	}
	set us [expr {[clock microseconds] - $t0}]
	return [expr {$check ? [tsv::get bench counter] : $us}]
    }
    writeBinary $cfg(counterPath) [string repeat \0 64]
    set m [openMmap $cfg(counterPath) 1]
    try {
	set t0 [clock microseconds]
	for {set i 0} {$i < $count} {incr i} {
	    mmap::incr $m 8
	}
	set us [expr {[clock microseconds] - $t0}]
	return [expr {$check ? [mmap::incr $m 8 0] : $us}]
    } finally {
	close $m
    }
}

# regionLockRun who check --
#	$cfg(lockCount) updates of a counter kept in a file, each under an
#	exclusive lock: TclX flock on the file, read and write through its
#	channel (native); mmap::lock with mmap::read and mmap::write (mmap).
proc ::bench::regionLockRun {who check} {
    variable cfg
    set count $cfg(lockCount)
    writeBinary $cfg(counterPath) [string repeat \0 64]
    if {$who eq "native"} {
	set f [open $cfg(counterPath) r+]
	fconfigure $f -translation binary -buffering none
	set t0 [clock microseconds]
	for {set i 0} {$i < $count} {incr i} {
	    flock -write $f
	    seek $f 8
	    binary scan [read $f 8] w n
	    seek $f 8
	    puts -nonewline $f [binary format w [incr n]]
	    funlock $f
	}
	set us [expr {[clock microseconds] - $t0}]
	close $f
    } else {
	set m [openMmap $cfg(counterPath) 1]
	set t0 [clock microseconds]
	for {set i 0} {$i < $count} {incr i} {
	    mmap::lock $m 0 {
		binary scan [mmap::read $m 8 8] w n
		mmap::write $m 8 [binary format w [incr n]]
	    }
	}
	set us [expr {[clock microseconds] - $t0}]
	close $m
    }
    if {!$check} {
	return $us
    }
    binary scan [readFileBytes $cfg(counterPath) 8 8] w n
    return $n
}

# regionPingRun who check --
#	$cfg(pingCount) round trips between this process and a child tclsh:
#	a line each way over its pipes (native), or a word in a -shared
#	mapping that each side increments, then wakes the other, which waits
#	for the change (mmap).  Starting the child is not timed.
proc ::bench::regionPingRun {who check} {
    variable cfg
    set count $cfg(pingCount)
    writeBinary $cfg(counterPath) [string repeat \0 64]
    set script [file join [file dirname $cfg(counterPath)] ping.tcl]
    writeBinary $script {
	package require mmap
	lassign $argv who path count
	fconfigure stdout -buffering line
	if {$who eq "native"} {
	    puts ready
	    for {set i 0} {$i < $count} {incr i} {
		gets stdin
		puts pong
	    }
	} else {
	    set f [open $path r+]
	    set m [mmap -shared $f]
	    close $f
	    puts ready
	    set v 0
	    for {set i 0} {$i < $count} {incr i} {
		while {[mmap::incr $m 0 0] == $v} {
		    mmap::wait $m 0 $v
		}
		set v [mmap::incr $m 0]
		mmap::wake $m 0
	    }
	}
    }
    set child [open |[list [info nameofexecutable] $script $who \
			  $cfg(counterPath) $count] r+]
    fconfigure $child -buffering line
    gets $child
    if {$who eq "native"} {
	set t0 [clock microseconds]
	for {set i 0} {$i < $count} {incr i} {
	    puts $child ping
	    gets $child
	}
	set us [expr {[clock microseconds] - $t0}]
	set trips $i
    } else {
	set m [openMmap $cfg(counterPath) 1]
	set t0 [clock microseconds]
	for {set i 0} {$i < $count} {incr i} {
	    set v [mmap::incr $m 0]
	    mmap::wake $m 0
	    while {[mmap::incr $m 0 0] == $v} {
		mmap::wait $m 0 $v
	    }
	}
	set us [expr {[clock microseconds] - $t0}]
	set trips [expr {[mmap::incr $m 0 0] / 2}]
	close $m
    }
    close $child
    return [expr {$check ? $trips : $us}]
}

# regionTakeoverRun who check --
#	$cfg(takeoverCount) times: a child takes the lock and keeps it, a
#	second child blocks for it, and the holder is killed with SIGKILL;
#	the time from just before the kill to the moment the second child
#	has the lock. TclX flock on the file (native: the kernel hands the
#	lock over when the holder dies) or mmap::lock (mmap: the sleeper
#	looks at its holder every 200 ms). The kill goes through the
#	shell's built-in kill, a millisecond or so of both.
proc ::bench::regionTakeoverRun {who check} {
    variable cfg
    writeBinary $cfg(counterPath) [string repeat \0 64]
    set script [file join [file dirname $cfg(counterPath)] takeover.tcl]
    writeBinary $script {
	package require mmap
	package require Tclx
	lassign $argv who path role
	fconfigure stdout -buffering line
	set f [open $path r+]
	set m [mmap -shared $f]
	if {$role eq "holder"} {
	    if {$who eq "native"} {
		flock -write $f
		puts held
		gets stdin
	    } else {
		mmap::lock $m 0 {
		    puts held
		    gets stdin
		}
	    }
	} else {
	    puts ready
	    if {$who eq "native"} {
		flock -write $f
	    } else {
		mmap::lock $m 0 {}
	    }
	    puts [clock microseconds]
	}
    }
    set total 0
    set done 0
    for {set i 0} {$i < $cfg(takeoverCount)} {incr i} {
	set holder [open |[list [info nameofexecutable] $script $who \
			       $cfg(counterPath) holder] r+]
	fconfigure $holder -buffering line
	gets $holder
	set waiter [open |[list [info nameofexecutable] $script $who \
			       $cfg(counterPath) waiter] r+]
	fconfigure $waiter -buffering line
	gets $waiter
	# Let it fall asleep for the lock.
	after 50
	set t0 [clock microseconds]
	exec /bin/sh -c {kill -s KILL "$1"} sh [pid $holder]
	set got [gets $waiter]
	if {[string is wide -strict $got]} {
	    incr total [expr {$got - $t0}]
	    incr done
	}
	catch {close $holder}
	close $waiter
    }
    return [expr {$check ? $done : $total}]
}

proc ::bench::caseRegion {} {
    variable cfg
    variable notes
    set cfg(counterPath) [file join [file dirname $cfg(binPath)] counter.bin]
    set offsets [randOffsets]
    foreach fresh {0 1} label {warm fresh} target {8 2.5} {
	set s [measure "region-read-$label" {native mmap} \
		   [list ::bench::regionReadRun $offsets $fresh]]
	addRow "mmap::read $label $cfg(randCount)x$cfg(randLen)B" $s \
	    $cfg(randCount) "µs/read" $target
    }
    # The contenders of these two come from other packages.
    foreach {package title run label count unit target} [list \
	    Thread region-incr ::bench::regionIncrRun \
		"mmap::incr x$cfg(incrCount) (native: tsv::incr)" \
		$cfg(incrCount) "µs/incr" 1.0 \
	    Tclx region-lock ::bench::regionLockRun \
		"mmap::lock+read+write x$cfg(lockCount) (native: flock)" \
		$cfg(lockCount) "µs/update" 5.0 \
	    Tclx region-takeover ::bench::regionTakeoverRun \
		"lock takeover after kill -9 x$cfg(takeoverCount) (native: flock)" \
		$cfg(takeoverCount) "µs/takeover" {}] {
	if {[catch {package require $package}]} {
	    lappend notes "$title: n/a, package $package is not installed"
	    continue
	}
	addRow $label [measure $title {native mmap} $run] $count $unit $target
    }
    set s [measure "region-ping" {native mmap} ::bench::regionPingRun]
    addRow "mmap::wait/wake ping-pong x$cfg(pingCount) (native: pipes)" $s \
	$cfg(pingCount) "µs/round trip" 1.0
}

# ----------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------

proc ::bench::ratio {a b} {
    if {![string is double -strict $a] || ![string is double -strict $b]
	    || $b == 0} {
	return n/a
    }
    return [expr {double($a) / $b}]
}

# (if, not expr: expr would turn "1.00" back into the number 1.0)
proc ::bench::fmtRatio {r} {
    if {$r eq "n/a"} {
	return n/a
    }
    return [format %.2f $r]
}

proc ::bench::fmtSeconds {s} {
    if {$s eq ""} {
	return n/a
    }
    return [format %.6f $s]
}

# verdict ratio limit op --
#	"met" or "missed" for ratio $op $limit (op is >= or <=).
proc ::bench::verdict {ratio limit op} {
    if {$ratio eq "n/a"} {
	return "n/a"
    }
    set r [format %.2f $ratio]
    return [expr "\$r $op \$limit" ? "{met}" : "{missed}"]
}

# tableRows --
#	The result table as a list of lists of cells, header first.
proc ::bench::tableRows {} {
    variable rows
    set out [list {case {native s} {mmap s} {memchan s} native/mmap
		   mmap/memchan target}]
    foreach row $rows {
	set s [dict get $row seconds]
	foreach who {native mmap memchan} {
	    set v($who) [expr {[dict exists $s $who]
			       ? [median [dict get $s $who]] : ""}]
	}
	set nm [ratio $v(native) $v(mmap)]
	set mmc [ratio $v(mmap) $v(memchan)]
	set targets {}
	set limit [dict get $row nmTarget]
	if {$limit ne ""} {
	    lappend targets "n/m>=[format %.1f $limit]\
		[verdict $nm $limit >=]"
	}
	if {$mmc ne "n/a"} {
	    lappend targets "m/mc<=1.10 [verdict $mmc 1.10 <=]"
	}
	if {[llength [dict get $row extra]]} {
	    lassign [dict get $row extra] what r limit
	    lappend targets "$what=[fmtRatio $r]<=[format %.1f $limit]\
		[verdict $r $limit <=]"
	}
	if {![llength $targets]} {
	    lappend targets -
	}
	lappend out [list [dict get $row label] [fmtSeconds $v(native)] \
			 [fmtSeconds $v(mmap)] [fmtSeconds $v(memchan)] \
			 [fmtRatio $nm] [fmtRatio $mmc] [join $targets {; }]]
    }
    return $out
}

# perOpRows --
#	Median time per operation, so that rows with different counts (logw
#	and logw-sync) can be compared.
proc ::bench::perOpRows {} {
    variable rows
    set out [list {case unit native mmap memchan}]
    foreach row $rows {
	set s [dict get $row seconds]
	set line [list [dict get $row label] [dict get $row unit]]
	foreach who {native mmap memchan} {
	    if {[dict exists $s $who]} {
		lappend line [format %.3f [expr {
		    [median [dict get $s $who]] * 1e6 / [dict get $row ops]}]]
	    } else {
		lappend line n/a
	    }
	}
	lappend out $line
    }
    return $out
}

# spreadRows --
#	Slowest round over fastest round, per contender: how far apart the
#	rounds were, to judge how much a median can be trusted.
proc ::bench::spreadRows {} {
    variable rows
    set out [list {case native mmap memchan}]
    foreach row $rows {
	set s [dict get $row seconds]
	set line [list [dict get $row label]]
	foreach who {native mmap memchan} {
	    if {[dict exists $s $who]} {
		set sorted [lsort -real [dict get $s $who]]
		lappend line [fmtRatio [ratio [lindex $sorted end] \
					    [lindex $sorted 0]]]
	    } else {
		lappend line n/a
	    }
	}
	lappend out $line
    }
    return $out
}

# printPlain table --
#	Columns padded to their widest cell, separated by " | ".
proc ::bench::printPlain {table} {
    set widths {}
    foreach line $table {
	set i 0
	foreach cell $line {
	    set w [string length $cell]
	    if {$i >= [llength $widths]} {
		lappend widths $w
	    } elseif {$w > [lindex $widths $i]} {
		lset widths $i $w
	    }
	    incr i
	}
    }
    set rule [join [lmap w $widths {string repeat - $w}] -+-]
    set first 1
    foreach line $table {
	set cells {}
	foreach cell $line w $widths {
	    lappend cells [format %-*s $w $cell]
	}
	puts [string trimright [join $cells " | "]]
	if {$first} {
	    puts $rule
	    set first 0
	}
    }
}

proc ::bench::printMarkdown {table} {
    set first 1
    foreach line $table {
	puts "| [join $line { | }] |"
	if {$first} {
	    puts "|[join [lmap c $line {string cat ---}] |]|"
	    set first 0
	}
    }
}

# machineInfo dir --
#	Header lines about where and on what the numbers were taken.
proc ::bench::machineInfo {dir} {
    set lines {}
    lappend lines "date:       [clock format [clock seconds] \
	-format {%Y-%m-%d %H:%M:%S %Z}]"
    if {[catch {exec uname -srm} uname]} {
	set uname "$::tcl_platform(os) $::tcl_platform(osVersion)\
	    $::tcl_platform(machine)"
    }
    lappend lines "machine:    $uname"
    set cpu unknown
    set cores 0
    if {![catch {open /proc/cpuinfo r} f]} {
	foreach l [split [read $f] \n] {
	    if {$cpu eq "unknown"
		    && [regexp {^model name\s*:\s*(.*)$} $l -> model]} {
		set cpu $model
	    }
	    if {[regexp {^processor\s*:} $l]} {
		incr cores
	    }
	}
	close $f
    }
    lappend lines "cpu:        $cpu"
    if {!$cores} {
	set cores unknown
    }
    lappend lines "cores:      $cores (logical CPUs)"
    lappend lines "tcl:        [info patchlevel]"
    if {[catch {exec stat -f -c %T $dir} fs]} {
	set fs unknown
    }
    lappend lines "temp dir:   $dir ($fs)"
    return $lines
}

# channelDefaults withMemchan path --
#	The standard options each contender starts with, as this run saw
#	them: a dict contender -> option/value dict.
proc ::bench::channelDefaults {withMemchan path} {
    set std {-blocking -buffering -buffersize -encoding -eofchar -translation}
    set chans [list native [openNative $path 0] mmap [openMmap $path 0]]
    if {$withMemchan} {
	lappend chans memchan [memchan]
    }
    set out {}
    foreach {who ch} $chans {
	foreach opt $std {
	    dict set out $who $opt [fconfigure $ch $opt]
	}
	close $ch
    }
    return $out
}

# defaultsDiffer defaults who --
#	The options in which contender $who starts differently from a file
#	channel, as "-opt value" pairs.
proc ::bench::defaultsDiffer {defaults who} {
    set native [dict get $defaults native]
    set diff {}
    dict for {opt value} [dict get $defaults $who] {
	if {$value ne [dict get $native $opt]} {
	    lappend diff $opt $value
	}
    }
    return $diff
}

# ----------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------

# ----------------------------------------------------------------------------
# The log case: mmap::log against the ways a script logs without it
# ----------------------------------------------------------------------------

# mlogAppendRun count key check --
#	$count 64-byte records: native = [puts] of a 63-character line to a
#	file opened for appending with -buffering line (each line is in the
#	kernel when [puts] returns, as each record is with [$log append]);
#	mmap = [$log append] of the same 64 characters to a fresh log.
proc ::bench::mlogAppendRun {count key check} {
    variable cfg
    file delete $cfg(appendPath) $cfg(mlogPath)
    set line [string range $cfg(record) 0 62]
    set message $line\n
    if {$key eq "native"} {
	set ch [open $cfg(appendPath) a]
	fconfigure $ch -buffering line
	set t0 [clock microseconds]
	for {set i 0} {$i < $count} {incr i} {
	    puts $ch $line
	}
	set us [expr {[clock microseconds] - $t0}]
	close $ch
	if {$check} {
	    set seen [expr {[readFileBytes $cfg(appendPath)] eq [string repeat $message $count]}]
	}
    } else {
	set log [mmap::log open $cfg(mlogPath) -size $cfg(mlogSize)]
	set t0 [clock microseconds]
	for {set i 0} {$i < $count} {incr i} {
	    $log append $message
	}
	set us [expr {[clock microseconds] - $t0}]
	if {$check} {
	    set all [$log read]
	    set seen [expr {[llength $all] == 3 * $count
			     && [lsort -unique [lmap {s t m} $all {set m}]] eq [list $message]}]
	}
	$log close
    }
    return [expr {$check ? [list records $count exact $seen] : $us}]
}

# mlogWritersRun count key check --
#	$count records appended by separate tclsh processes started
#	together: native = one process appending all, mmap = 4 processes
#	appending a quarter each. Each child reports its own first and last
#	microsecond; the time is from the earliest start to the latest end.
proc ::bench::mlogWritersRun {count key check} {
    variable cfg
    file delete $cfg(mlogPath)
    set writers [expr {$key eq "native" ? 1 : 4}]
    set each [expr {$count / 4 * 4 / $writers}]
    mmap::log open $cfg(mlogPath) -size $cfg(mlogSize)
    set script [string map [list @PATH@ [list $cfg(mlogPath)] @EACH@ $each \
	@AT@ [expr {[clock milliseconds] + 300}] @VERSION@ [package present mmap] \
	@IFNEEDED@ [list [package ifneeded mmap [package present mmap]]]] {
	package ifneeded mmap @VERSION@ @IFNEEDED@
	package require mmap
	set log [mmap::log open @PATH@]
	after [expr {max(0, @AT@ - [clock milliseconds])}]
	set message [format "%-63.63s" "writer [pid] record"]
	set t0 [clock microseconds]
	for {set i 0} {$i < @EACH@} {incr i} {
	    $log append $message
	}
	puts "$t0 [clock microseconds]"
    }]
    set chans {}
    for {set w 0} {$w < $writers} {incr w} {
	lappend chans [open |[list [info nameofexecutable] << $script] r]
    }
    set starts {}
    set ends {}
    foreach ch $chans {
	lassign [read $ch] start end
	close $ch
	lappend starts $start
	lappend ends $end
    }
    if {$check} {
	set log [mmap::log open $cfg(mlogPath)]
	set info [$log info]
	$log close
	return [list records [dict get $info records] next [dict get $info next]]
    }
    return [expr {[tcl::mathfunc::max {*}$ends] - [tcl::mathfunc::min {*}$starts]}]
}

# mlogReadRun count key check --
#	The newest $count records: native = [gets] of $count lines from a
#	text file; mmap = [$log read -last $count] and a [foreach] over it.
proc ::bench::mlogReadRun {count key check} {
    variable cfg
    if {$key eq "native"} {
	set ch [open $cfg(textPath)]
	set t0 [clock microseconds]
	set n 0
	while {[gets $ch line] >= 0} {
	    incr n
	}
	set us [expr {[clock microseconds] - $t0}]
	close $ch
    } else {
	set log [mmap::log open $cfg(mlogPath)]
	set t0 [clock microseconds]
	set n 0
	foreach {seq time message} [$log read -last $count] {
	    incr n
	}
	set us [expr {[clock microseconds] - $t0}]
	$log close
    }
    return [expr {$check ? [list lines $n] : $us}]
}

proc ::bench::caseLog {} {
    variable cfg
    variable notes
    set n $cfg(mlogCount)
    set s [measure "log append" {native mmap} [list ::bench::mlogAppendRun $n]]
    addRow "log append ${n}x64B" $s $n "µs/record" 4.0

    set s [measure "log 4 writers" {native mmap} [list ::bench::mlogWritersRun $n]]
    addRow "log 4 writers ${n}x64B" $s $n "µs/record" 1.0
    lappend notes "log 4 writers: native = one process appending all the\
	records to an mmap::log, mmap = 4 processes appending a quarter each\
	at once (n/m >= 1: their total rate is at least one process's)"

    # The log to read: the newest records of a full one.
    set r $cfg(mlogReadCount)
    file delete $cfg(mlogPath)
    set log [mmap::log open $cfg(mlogPath) -size $cfg(mlogSize)]
    set lines [split [string trimright [readFileBytes $cfg(textPath)] \n] \n]
    foreach line $lines {
	$log append $line
    }
    $log close
    set s [measure "log read" {native mmap} [list ::bench::mlogReadRun $r]]
    addRow "log read -last ${r}" $s $r "µs/record" 1.0
    lappend notes "log append: native = puts to a file opened in append mode\
	with -buffering line; log read: native = gets of the same lines from\
	a text file"
}


# ----------------------------------------------------------------------------
# The sqlite case: mmap::log against SQLite and a text file, each run in a
# fresh process
# ----------------------------------------------------------------------------

# The child that does one run of the sqlite case: it gets the operation,
# the contender, the file and the count on its command line and prints
# the microseconds the operation took (check 0), or what it wrote or read
# (check 1), which must be the same for every contender. Each run is a
# fresh process: what a first read costs (pages mapped, caches filled,
# values allocated for the first time) counts, as for a program that
# starts, reads the newest records and exits.
set ::bench::sqlChild {
    package ifneeded mmap @VERSION@ @IFNEEDED@
    package require mmap
    lassign $argv op who path count check logSize

    # The 64-byte record i (63 characters and a newline).
    proc record {i} {
	return [format %-63.63s "2024-06-01T12:00:00.000000Z INFO bench: record $i"]\n
    }

    # What a reader saw: how many records, and a CRC of their messages
    # (without the newline) oldest first.
    proc seen {messages} {
	set text [join [lmap m $messages {string trimright $m \n}] \n]
	return [list records [llength $messages] crc [zlib crc32 $text]]
    }

    # Appending $count copies of one 64-byte record. Every contender
    # stores a time with each record: the log stamps it itself, SQLite
    # gets [clock microseconds].
    proc append-log {path count check logSize} {
	set message [record 0]
	set log [mmap::log open $path -size $logSize]
	set t0 [clock microseconds]
	for {set i 0} {$i < $count} {incr i} {
	    $log append $message
	}
	set us [expr {[clock microseconds] - $t0}]
	if {$check} {
	    set messages [lmap {s t m} [$log read] {set m}]
	    set us [list records [llength $messages] distinct [lsort -unique $messages]]
	}
	$log close
	return $us
    }
    proc append-puts {path count check logSize} {
	set line [string trimright [record 0] \n]
	set ch [open $path a]
	fconfigure $ch -buffering line
	set t0 [clock microseconds]
	for {set i 0} {$i < $count} {incr i} {
	    puts $ch $line
	}
	set us [expr {[clock microseconds] - $t0}]
	close $ch
	if {$check} {
	    set f [open $path]
	    set messages [split [string trimright [read $f] \n] \n]
	    close $f
	    set us [list records [llength $messages] distinct [lsort -unique [lmap m $messages {string cat $m \n}]]]
	}
	return $us
    }
    # who: sqlite-SYNC-each (one INSERT, so one transaction, per record)
    # or sqlite-SYNC-batch (one transaction per 1,000 records).
    proc append-sqlite {who path count check} {
	package require sqlite3
	lassign [split $who -] - sync per
	sqlite3 db $path
	db eval {PRAGMA journal_mode=WAL}
	db eval "PRAGMA synchronous=$sync"
	db eval {CREATE TABLE log(seq INTEGER PRIMARY KEY, time INTEGER NOT NULL,
		 message TEXT NOT NULL)}
	set message [record 0]
	set t0 [clock microseconds]
	if {$per eq "each"} {
	    for {set i 0} {$i < $count} {incr i} {
		set t [clock microseconds]
		db eval {INSERT INTO log(time, message) VALUES($t, $message)}
	    }
	} else {
	    for {set i 0} {$i < $count} {} {
		db transaction {
		    for {set k 0} {$k < 1000 && $i < $count} {incr k; incr i} {
			set t [clock microseconds]
			db eval {INSERT INTO log(time, message) VALUES($t, $message)}
		    }
		}
	    }
	}
	set us [expr {[clock microseconds] - $t0}]
	if {$check} {
	    set messages [db eval {SELECT message FROM log ORDER BY seq}]
	    set us [list records [llength $messages] distinct [lsort -unique $messages]]
	}
	db close
	return $us
    }

    # Reading the newest $count records, each into variables, as a
    # program would go through them. Opening is not timed.
    proc read-log {path count check} {
	set log [mmap::log open $path -readonly]
	if {$check} {
	    set messages {}
	    $log foreach {seq time message} -last $count { lappend messages $message }
	    return [seen $messages]
	}
	set n 0
	set t0 [clock microseconds]
	$log foreach {seq time message} -last $count { incr n }
	return [expr {[clock microseconds] - $t0}]
    }
    proc read-logread {path count check} {
	set log [mmap::log open $path -readonly]
	set n 0
	set t0 [clock microseconds]
	foreach {seq time message} [$log read -last $count] { incr n }
	set us [expr {[clock microseconds] - $t0}]
	return [expr {$check ? [seen [lmap {s t m} [$log read -last $count] {set m}]] : $us}]
    }
    proc read-sqlite {path count check} {
	package require sqlite3
	sqlite3 db $path -readonly 1
	# Opening reads nothing; the schema is read here, untimed, as
	# opening the log reads its header.
	db eval {PRAGMA schema_version}
	if {$check} {
	    set messages [db eval {SELECT message FROM log ORDER BY seq DESC LIMIT $count}]
	    return [seen [lreverse $messages]]
	}
	set n 0
	set t0 [clock microseconds]
	db eval {SELECT seq, time, message FROM log ORDER BY seq DESC LIMIT $count} { incr n }
	return [expr {[clock microseconds] - $t0}]
    }
    proc read-gets {path count check} {
	set ch [open $path]
	if {$check} {
	    set messages {}
	    while {[gets $ch line] >= 0} { lappend messages $line }
	    return [seen $messages]
	}
	set n 0
	set t0 [clock microseconds]
	while {[gets $ch line] >= 0} { incr n }
	return [expr {[clock microseconds] - $t0}]
    }

    if {$op eq "append" && [string match sqlite-* $who]} {
	puts [append-sqlite $who $path $count $check]
    } elseif {$op eq "append"} {
	puts [append-$who $path $count $check $logSize]
    } else {
	puts [read-$who $path $count $check]
    }
}

# sqlRun op count key check --
#	One run of the sqlite case's child for contender $key; the files
#	appended to are made afresh for each run.
proc ::bench::sqlRun {op count key check} {
    variable cfg
    if {$op eq "append"} {
	set path [file join $cfg(sqlDir) append-$key]
	file delete $path $path-wal $path-shm
	# What the runs before left for the kernel to write back (SQLite's
	# WAL, the text file) is written now, not during this run.
	catch {exec sync}
    } else {
	set path $cfg(sqlRead-$key)
    }
    set out [exec [info nameofexecutable] $cfg(sqlChildPath) $op $key $path $count \
		 $check $cfg(mlogSize)]
    if {$op eq "append"} {
	file delete $path $path-wal $path-shm
    }
    return $out
}

# haveSqlite --
#	Whether Tcl's sqlite3 package can be loaded; if not, and this runs
#	as root with apt-get, it installs Debian's libsqlite3-tcl first.
#	Returns {1 version} or {0 why}.
proc ::bench::haveSqlite {} {
    variable notes
    if {![catch {package require sqlite3} version]} {
	return [list 1 $version]
    }
    set why "package sqlite3: $version"
    if {[catch {exec id -u} uid] || $uid != 0} {
	return [list 0 "$why (not root: install Debian's libsqlite3-tcl to run these rows)"]
    }
    if {[auto_execok apt-get] eq ""} {
	return [list 0 "$why (no apt-get to install libsqlite3-tcl with)"]
    }
    progress "sqlite: installing libsqlite3-tcl with apt-get"
    if {[catch {exec apt-get install -y --no-install-recommends libsqlite3-tcl \
		    </dev/null >@stderr 2>@stderr} err]} {
	return [list 0 "$why; apt-get install libsqlite3-tcl failed: $err"]
    }
    if {[catch {package require sqlite3} version]} {
	return [list 0 "package sqlite3 still cannot be loaded after apt-get\
	    install libsqlite3-tcl: $version"]
    }
    lappend notes "sqlite: this run installed libsqlite3-tcl with apt-get"
    return [list 1 $version]
}

proc ::bench::caseSqlite {} {
    variable cfg
    variable notes
    set n $cfg(sqlAppendCount)
    set r $cfg(sqlReadCount)
    set cfg(sqlDir) [file join [file dirname $cfg(mlogPath)] sqlite]
    file mkdir $cfg(sqlDir)
    set cfg(sqlChildPath) [file join $cfg(sqlDir) child.tcl]
    set version [package present mmap]
    set f [open $cfg(sqlChildPath) w]
    puts $f [string map [list @VERSION@ $version \
	@IFNEEDED@ [list [package ifneeded mmap $version]]] $::bench::sqlChild]
    close $f
    lassign [haveSqlite] sqlite sqliteWhat
    if {$sqlite} {
	set sqlKeys {sqlite-OFF-each sqlite-OFF-batch sqlite-NORMAL-each sqlite-NORMAL-batch}
	lappend notes "sqlite: SQLite $sqliteWhat (Tcl package sqlite3)"
    } else {
	set sqlKeys {}
	lappend notes "sqlite: the SQLite rows were skipped: $sqliteWhat"
    }

    # Appending: every contender in the same rounds.
    set s [measure "sqlite append" [list log {*}$sqlKeys puts] \
	       [list ::bench::sqlRun append $n]]
    foreach key $sqlKeys label {
	"sync=OFF, 1 INSERT per transaction"
	"sync=OFF, 1000 INSERTs per transaction"
	"sync=NORMAL, 1 INSERT per transaction"
	"sync=NORMAL, 1000 INSERTs per transaction"
    } target {20.0 {} {} {}} {
	if {$key eq ""} {
	    break
	}
	addRow "log append vs SQLite WAL $label ${n}x64B" \
	    [dict create native [dict get $s $key] mmap [dict get $s log]] \
	    $n "µs/record" $target
    }
    addRow "log append vs puts -buffering line ${n}x64B" \
	[dict create native [dict get $s puts] mmap [dict get $s log]] $n "µs/record"

    # Reading: the same records in each store, the newest $r of 2 x $r.
    set total [expr {2 * $r}]
    set cfg(sqlRead-log) [file join $cfg(sqlDir) read.mlog]
    set cfg(sqlRead-logread) $cfg(sqlRead-log)
    set cfg(sqlRead-sqlite) [file join $cfg(sqlDir) read.db]
    set cfg(sqlRead-gets) [file join $cfg(sqlDir) read.txt]
    progress "sqlite: making the stores to read ($total records each)"
    set log [mmap::log open $cfg(sqlRead-log) -size $cfg(mlogSize)]
    set txt [open $cfg(sqlRead-gets) w]
    if {$sqlite} {
	sqlite3 ::bench::readDb $cfg(sqlRead-sqlite)
	readDb eval {PRAGMA journal_mode=WAL}
	readDb eval {CREATE TABLE log(seq INTEGER PRIMARY KEY, time INTEGER NOT NULL,
		     message TEXT NOT NULL)}
	readDb eval BEGIN
    }
    for {set i 1} {$i <= $total} {incr i} {
	set message [format %-63.63s "2024-06-01T12:00:00.000000Z INFO bench: record $i"]\n
	set seq [$log append $message]
	if {$sqlite} {
	    set t [clock microseconds]
	    readDb eval {INSERT INTO log(seq, time, message) VALUES($seq, $t, $message)}
	}
	if {$i > $total - $r} {
	    puts -nonewline $txt $message
	}
    }
    $log close
    close $txt
    set readKeys {log logread gets}
    if {$sqlite} {
	readDb eval COMMIT
	# Closing the last connection moves the WAL into the database file.
	readDb close
	set readKeys {log logread sqlite gets}
    }
    foreach key $readKeys {
	foreach file [glob -nocomplain $cfg(sqlRead-$key)*] {
	    warmFile $file
	}
    }
    set s [measure "sqlite read" $readKeys [list ::bench::sqlRun read $r]]
    if {$sqlite} {
	addRow "log foreach -last $r vs SQLite db eval DESC LIMIT $r" \
	    [dict create native [dict get $s sqlite] mmap [dict get $s log]] $r \
	    "µs/record" 1.5
    }
    addRow "log foreach -last $r vs gets of the same $r lines" \
	[dict create native [dict get $s gets] mmap [dict get $s log]] $r "µs/record" 1.5
    addRow "log foreach -last $r vs foreach over log read -last $r" \
	[dict create native [dict get $s logread] mmap [dict get $s log]] $r "µs/record"
    lappend notes "sqlite rows: each run is a fresh tclsh (a first read counts);\
	native = the contender named, mmap = mmap::log (append: \$log append\
	per record; read: \$log foreach {seq time message} -last N {incr n});\
	SQLite: journal_mode=WAL, table log(seq INTEGER PRIMARY KEY, time,\
	message), time from \[clock microseconds\] per INSERT, read with\
	db eval {SELECT seq, time, message ... ORDER BY seq DESC LIMIT N}\
	{incr n}; puts/gets: a text file, line-buffered puts to a file opened\
	for appending, gets of the newest N lines"
}

proc ::bench::main {argv} {
    variable cfg
    variable notes
    variable mismatch

    parseArgs $argv
    configure
    set memchanVersion [expr {[catch {package require Memchan} v] ? "" : $v}]
    set withMemchan [expr {$memchanVersion ne ""}]
    set readers [expr {$withMemchan ? {native mmap memchan} : {native mmap}}]
    if {!$withMemchan} {
	lappend notes "memchan: n/a, package Memchan is not installed\
	    (Debian: apt-get install tcl-memchan)"
    }

    set started [clock microseconds]
    set dir [makeScratchDir $cfg(parentDir)]
    try {
	set genSeconds [makeData $dir]
	# Any small file will do to read the channels' defaults.
	writeBinary [file join $dir probe] x
	set defaults [channelDefaults $withMemchan [file join $dir probe]]

	foreach case $cfg(cases) {
	    switch -- $case {
		logw	{ caseLogw $withMemchan }
		rand	{ caseRand $readers }
		bulk	{ caseBulk $readers }
		lines	{ caseLines $readers }
		mapcost { caseMapCost }
		region	{ caseRegion }
		log	{ caseLog }
		sqlite	{ caseSqlite }
	    }
	    forgetFiles
	}
	set info [machineInfo $dir]
    } finally {
	forgetFiles
	file delete -force $dir
    }
    set total [expr {([clock microseconds] - $started) / 1e6}]

    set mode [expr {$cfg(small) ? " (-small smoke run)" : ""}]
    puts "mmap channel benchmark$mode"
    foreach line $info {
	puts $line
    }
    puts "packages:   mmap [package present mmap], Memchan\
	[expr {$withMemchan ? $memchanVersion : {not installed}}]"
    puts "rounds:     $cfg(rounds) (median reported; contenders alternate,\
	order rotates each round)"
    puts "cases:      $cfg(cases)"
    puts [format "data:       generated in %.2f s; whole run %.2f s" \
	      $genSeconds $total]
    puts ""
    puts "Channel defaults used (standard options, as opened):"
    dict for {who opts} $defaults {
	puts [format "  %-8s %s" $who $opts]
    }
    puts ""

    set table [tableRows]
    printPlain $table
    puts ""
    puts "Per operation (median, microseconds):"
    printPlain [perOpRows]
    puts ""
    if {$cfg(rounds) > 1} {
	puts "Spread over the $cfg(rounds) rounds (slowest / fastest):"
	printPlain [spreadRows]
	puts ""
    }
    puts "Columns: median seconds per round; native/mmap > 1 means mmap is\
	faster."
    puts "Targets: n/m = native/mmap, m/mc = mmap/memchan; met/missed is\
	judged on the ratio rounded to 2 decimals."
    puts "Contenders: native = Tcl file channel, defaults (logw rows:\
	-buffering none);"
    puts "  mmap = mmap channel, defaults (logw: mmap -shared; logw-async /\
	logw-sync: -sync async / sync);"
    puts "  memchan = Memchan channel filled (untimed) with the same bytes,\
	then its defaults restored."
    foreach who {mmap memchan} {
	if {[dict exists $defaults $who]} {
	    puts "  $who starts unlike a file channel with:\
		[defaultsDiffer $defaults $who]"
	}
    }
    puts "logw-async and logw-sync: native is the same -buffering none run\
	with that row's record count."
    puts "map rows: native = open, read 4 KiB, close; mmap = open, mmap,\
	close source, read 4 KiB, close."
    foreach note $notes {
	puts "NOTE: $note"
    }
    puts ""
    puts "Markdown:"
    puts ""
    printMarkdown $table
    return [expr {$mismatch ? 2 : 0}]
}

if {[catch {::bench::main $argv} result opts]} {
    puts stderr "bench.tcl: $result"
    if {[dict get $opts -errorcode] ne {BENCH USAGE}} {
	puts stderr [dict get $opts -errorinfo]
    }
    exit 1
}
exit $result
