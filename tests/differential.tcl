# differential.tcl --
#
#	Differential test of the mmap channel: random sequences of channel
#	operations (and of mmap::read and mmap::write, which reach the region
#	without moving the position; an mmap::write into bytes Tcl has read
#	ahead is preceded by a seek, as the manual asks of scripts that mix
#	them) go both to a real mmap channel and to a small pure-Tcl model
#	of the mapped region, and after every step the two must agree on the
#	result (data returned, error or not, gets counts), on [tell] and on
#	[eof].  At the end of each sequence the channel is closed and the file
#	is compared with the model: a shared mapping must have left exactly the
#	model's bytes in the region, a private one must have left the file
#	alone, and the bytes before and after the region never change.
#
# Usage:
#	tclsh differential.tcl ?-seed N? ?-ops N? ?-seq K? ?-verbose?
#
#	-seed N	  master seed (default: env SEED, else taken from the clock)
#	-ops N	  total number of operations (default: env OPS, else 100000),
#		  split into sequences of 200-1000 operations, each on a fresh
#		  file and mapping
#	-seq K	  run only sequence K of that seed (for replaying a failure)
#	-verbose  print every operation and its result
#
#	The first line printed is "seed N".  On success it prints how often
#	each interesting case came up ("cases: ...", e.g. wrapping writes,
#	failed seeks that lost read-ahead), then the summary line
#	"differential: N ops, M sequences, S seconds (R ops/s), seed N", and
#	exits with status 0.  On a divergence the seed, sequence, operation, the model's
#	and the channel's view and a replay hint are printed, exit status 1.
#
# Every sequence has its own random generator state, derived from the master
# seed and the sequence number, so a failing sequence can be replayed alone
# with -seed and -seq.
#
# The model (namespace ::model) holds the region's bytes and the position and
# applies the rules the mmap channel promises:
#   - a read stops at the end of the region (EOF), it never wraps;
#   - byte i of a write lands at (pos+i) mod length, so a write longer than
#     the region keeps only its newest length bytes; afterwards the position
#     is (pos+count) mod length (a write of 0 bytes does nothing at all);
#   - seek targets must lie in [0, length], others are an error (EINVAL).
# On top of that it reproduces what Tcl's generic channel layer does with the
# eof flag and read-ahead, found by experiment with ordinary file channels
# (which behave the same way):
#   - every read/gets first clears the eof flag; it is set again only when
#     the operation wanted more than the region still holds: [read N] with
#     fewer than N bytes left, [read] without count (always), [gets] that
#     finds no newline before the end.  [read ch 0] just clears it.
#   - [seek] clears the eof flag whether it succeeds or not.
#   - [puts] and [tell] leave the eof flag alone.
#   - A seek that fails has already thrown away Tcl's read-ahead buffer, so
#     afterwards [tell] reports the driver's position, which is ahead of the
#     old one by what was buffered ([chan pending input] just before).  The
#     model takes that amount from the channel; since data read afterwards
#     is checked against the model, a wrong driver position still shows.
#   - Before a write Tcl drops its read-ahead (seeking the driver back), so
#     a write always starts at the position [tell] reported.

package require Tcl 8.6-
package require mmap

namespace eval ::diff {
    variable seed	{}	;# master seed
    variable ops	{}	;# total operations to run
    variable onlySeq	{}	;# run only this sequence (replay)
    variable count		;# array: case -> how often it came up
    variable verbose	0
    variable path	{}	;# the scratch file
    variable pool	;# array: binary, text -> data that writes take bytes from
    variable page	4096
    variable maxRegion	[expr {3 * 4096 + 300}]
    variable maxWrite	45000	;# no write is longer than this
    # Per sequence:
    variable seqNo	0
    variable opNo	0
    variable config	{}	;# dict describing the mapping
    variable ch		{}	;# the mmap channel
}

namespace eval ::model {
    variable M {}	;# the region's bytes (one char per byte, 0-255)
    variable L 0	;# region length
    variable P 0	;# position, 0..L
    variable E 0	;# eof flag
}

# ----------------------------------------------------------------------------
# Random numbers (Tcl's rand(), seeded per sequence)
# ----------------------------------------------------------------------------

# rnd n --	a random integer in [0, n)
proc ::diff::rnd {n} {
    expr {int(rand() * $n)}
}

# between a b --	a random integer in [a, b]
proc ::diff::between {a b} {
    expr {$a + int(rand() * ($b - $a + 1))}
}

# pick list --	a random element of list
proc ::diff::pick {list} {
    lindex $list [expr {int(rand() * [llength $list])}]
}

# seqSeed seed k --	the seed of sequence k (positive, below 2^31-1)
proc ::diff::seqSeed {seed k} {
    set s [expr {($seed * 2654435761 + ($k + 1) * 40503 + 12345) % 2147483647}]
    expr {$s == 0 ? 1 : $s}
}

# ----------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------

proc ::model::init {bytes} {
    variable M $bytes
    variable L [string length $bytes]
    variable P 0
    variable E 0
}

# Every model operation returns a pair {code value} like [catch] would give.

proc ::model::seek {offset origin pending chan} {
    variable L
    variable P
    variable E
    switch -- $origin {
	start - "" {set base 0}
	current	   {set base $P}
	end	   {set base $L}
    }
    set target [expr {$base + $offset}]
    set E 0
    if {$target < 0 || $target > $L} {
	# Tcl discarded its read-ahead before asking the driver.
	incr P $pending
	::diff::tally [expr {$pending > 0 ? "bad seek, read-ahead lost" : "bad seek"}]
	return [list 1 "error during seek on \"$chan\": invalid argument"]
    }
    set P $target
    ::diff::tally seek
    return {0 {}}
}

proc ::model::read {count} {
    variable M
    variable L
    variable P
    variable E
    if {$count eq "all"} {
	set data [string range $M $P end]
	set P $L
	set E 1
	::diff::tally "read to end"
	return [list 0 $data]
    }
    set n [expr {min($count, $L - $P)}]
    set data [string range $M $P [expr {$P + $n - 1}]]
    incr P $n
    set E [expr {$n < $count}]
    ::diff::tally [expr {$count == 0 ? "read 0" : $E ? "short read" : "full read"}]
    return [list 0 $data]
}

# gets form --	form is "plain" ([gets ch]) or "var" ([gets ch var]: the
#		value is {count line}).
proc ::model::gets {form} {
    variable M
    variable L
    variable P
    variable E
    set j [string first \n $M $P]
    if {$j < 0} {
	set line [string range $M $P end]
	set P $L
	set E 1
	set count [expr {$line eq "" ? -1 : [string length $line]}]
	::diff::tally [expr {$count < 0 ? "gets at end" : "gets, last line unterminated"}]
    } else {
	set line [string range $M $P [expr {$j - 1}]]
	set P [expr {$j + 1}]
	set E 0
	set count [string length $line]
	::diff::tally "gets line"
    }
    if {$form eq "plain"} {
	return [list 0 $line]
    }
    return [list 0 [list $count $line]]
}

# write data --	the bytes of one write (puts' newline already appended)
proc ::model::write {data} {
    variable M
    variable L
    variable P
    set n [string length $data]
    if {$n == 0} {
	::diff::tally "empty write"
	return {0 {}}
    }
    if {$n >= $L} {
	::diff::tally "write >= length"
	# Only the newest L bytes survive; the first of them lands at s.
	set tail [string range $data [expr {$n - $L}] end]
	set s [expr {($P + $n - $L) % $L}]
	set M [string range $tail [expr {$L - $s}] end][string range $tail 0 [expr {$L - $s - 1}]]
    } else {
	set s [expr {$P % $L}]
	if {$s + $n <= $L} {
	    ::diff::tally [expr {$s + $n == $L ? "write up to the end" : "write"}]
	    set M [string replace $M $s [expr {$s + $n - 1}] $data]
	} else {
	    ::diff::tally "wrapping write"
	    set first [expr {$L - $s}]	;# bytes up to the end of the region
	    set M [string range $data $first end][string range $M [expr {$n - $first}] [expr {$s - 1}]][string range $data 0 [expr {$first - 1}]]
	}
    }
    set P [expr {($P + $n) % $L}]
    return {0 {}}
}

# The bytes mmap::read and mmap::write would touch, or the error they give
# when those lie outside the region ("" when they are inside).
proc ::model::outside {offset count chan} {
    variable L
    if {$offset > $L} {
	return "offset \"$offset\" is past the end of channel \"$chan\" ($L bytes)"
    }
    if {$offset + $count > $L} {
	return "offset \"$offset\" plus $count bytes reaches past the end of\
		channel \"$chan\" ($L bytes)"
    }
    return ""
}

# mread offset count chan --	[mmap::read]: count "all" reads to the end.
#		Neither the position nor the eof flag changes.
proc ::model::mread {offset count chan} {
    variable M
    set error [outside $offset [expr {$count eq "all" ? 0 : $count}] $chan]
    if {$error ne ""} {
	::diff::tally "mmap::read refused"
	return [list 1 $error]
    }
    ::diff::tally "mmap::read"
    if {$count eq "all"} {
	return [list 0 [string range $M $offset end]]
    }
    return [list 0 [string range $M $offset [expr {$offset + $count - 1}]]]
}

# mwrite offset data chan --	[mmap::write]: never wraps, all or nothing.
proc ::model::mwrite {offset data chan} {
    variable M
    set n [string length $data]
    set error [outside $offset $n $chan]
    if {$error ne ""} {
	::diff::tally "mmap::write refused"
	return [list 1 $error]
    }
    ::diff::tally "mmap::write"
    if {$n > 0} {
	set M [string replace $M $offset [expr {$offset + $n - 1}] $data]
    }
    return {0 {}}
}

# tally what --	count one occurrence of an interesting case (the coverage
#		line printed at the end shows them all)
proc ::diff::tally {what} {
    variable count
    incr count($what)
}

# ----------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------

# makePools --
#	Two pools that written data and the initial file contents are cut from.
#	binary: all byte values, plus extra newlines so that [gets] finds
#	lines.  text: for the default translation only printable ASCII and \n
#	(no \r and nothing above 127), so that the channel's translation and
#	encoding leave every byte as it is and the byte-exact model still
#	holds; Tcl writes "\n" as LF on Unix.  In both, newlines are dense in
#	the first half (lines of ~20 bytes) and sparse in the second half
#	(lines of ~2000 bytes, longer than some regions and buffers).
proc ::diff::makePools {} {
    variable pool
    variable maxWrite
    set size [expr {$maxWrite + 5000}]
    set half [expr {$size / 2}]
    foreach kind {binary text} {
	set codes {}
	for {set i 0} {$i < $size} {incr i} {
	    set nl [expr {$i < $half ? 0.05 : 0.0005}]
	    if {rand() < $nl} {
		lappend codes 10
	    } elseif {$kind eq "binary"} {
		lappend codes [expr {int(rand() * 256)}]
	    } else {
		lappend codes [expr {32 + int(rand() * 95)}]
	    }
	}
	# A character string (not a byte array): the model's string commands
	# index it directly.
	set pool($kind) [encoding convertfrom iso8859-1 [binary format c* $codes]]
    }
}

# randomBytes kind n --	n bytes from pool kind, at a random place
proc ::diff::randomBytes {kind n} {
    variable pool
    set start [rnd [expr {[string length $pool($kind)] - $n + 1}]]
    string range $pool($kind) $start [expr {$start + $n - 1}]
}

# ----------------------------------------------------------------------------
# Random operations
# ----------------------------------------------------------------------------

# pickSize --
#	A read count or write size: 0, 1, small, medium, around the page and
#	buffer size, exactly what is left, the whole region, longer than it.
proc ::diff::pickSize {} {
    variable page
    variable maxWrite
    set L $::model::L
    set P $::model::P
    set r [rnd 100]
    if {$r < 7} {
	set n 0
    } elseif {$r < 18} {
	set n 1
    } elseif {$r < 42} {
	set n [between 2 40]
    } elseif {$r < 56} {
	set n [between 41 1200]
    } elseif {$r < 66} {
	set n [expr {[pick {1 1 2 3}] * $page + [between -2 2]}]
    } elseif {$r < 70} {
	set n [expr {$L - $P + [between -1 1]}]
    } elseif {$r < 75} {
	set n [expr {$L - $P + [between 2 50]}]
    } elseif {$r < 84} {
	set n [expr {$L + [between -1 1]}]
    } else {
	set n [expr {$L + 1 + [rnd [expr {2 * $L + 1}]]}]
    }
    expr {max(0, min($n, $maxWrite))}
}

# pickSeek --
#	{offset origin}: a target inside [0, L] most of the time (0, L, the
#	current position and near it, page boundaries, anywhere), outside it
#	(an error) otherwise, expressed relative to a random origin ("" is
#	[seek] without origin, i.e. start).
proc ::diff::pickSeek {} {
    variable page
    set L $::model::L
    set P $::model::P
    set r [rnd 100]
    if {$r < 10} {
	set target 0
    } elseif {$r < 20} {
	set target $L
    } elseif {$r < 28} {
	set target $P
    } elseif {$r < 40} {
	set target [expr {max(0, min($L, $P + [between -3 3]))}]
    } elseif {$r < 62} {
	set target [between 0 $L]
    } elseif {$r < 70} {
	set target [expr {max(0, min($L, [pick {1 2 3}] * $page + [between -1 1]))}]
    } elseif {$r < 77} {
	set target [expr {max(0, $L - [between 1 3])}]
    } elseif {$r < 87} {
	set target [expr {-1 - [pick [list 0 0 1 [rnd [expr {$L + 10}]]]]}]
    } else {
	set target [expr {$L + 1 + [pick [list 0 0 1 [rnd [expr {$L + 10}]]]]}]
    }
    set origin [pick {"" start current end}]
    switch -- $origin {
	"" - start {set offset $target}
	current	   {set offset [expr {$target - $P}]}
	end	   {set offset [expr {$target - $L}]}
    }
    list $offset $origin
}

# pickOffset --	an offset for mmap::read / mmap::write: in the region
#		mostly, at its end, or past it (an error)
proc ::diff::pickOffset {} {
    set L $::model::L
    set r [rnd 10]
    if {$r < 1} {
	return 0
    } elseif {$r < 2} {
	return $L
    } elseif {$r < 3} {
	return [expr {$L + 1 + [rnd 10]}]
    }
    return [rnd [expr {$L + 1}]]
}

# randomOp --	one random operation, as a list
proc ::diff::randomOp {} {
    variable config
    set r [rnd 1100]
    if {$r < 150} {
	return [list seek {*}[pickSeek]]
    } elseif {$r < 370} {
	return [list read [pickSize]]
    } elseif {$r < 400} {
	return [list read all]
    } elseif {$r < 480} {
	return [list gets plain]
    } elseif {$r < 560} {
	return [list gets var]
    } elseif {$r < 700} {
	return [list puts newline [randomBytes [dict get $config data] [pickSize]]]
    } elseif {$r < 850} {
	return [list puts nonewline [randomBytes [dict get $config data] [pickSize]]]
    } elseif {$r < 915} {
	return [list tell]
    } elseif {$r < 980} {
	return [list eof]
    } elseif {$r < 1000} {
	return [list file]
    } elseif {$r < 1050} {
	return [list mread [pickOffset] [expr {[rnd 10] ? [pickSize] : "all"}]]
    } else {
	return [list mwrite [pickOffset] \
		    [randomBytes [dict get $config data] [pickSize]]]
    }
}

# staleReadAhead op pending --	whether op is an mmap::write into bytes
#		that Tcl has already read ahead (pending of them from the
#		position on): the channel would go on returning the old
#		bytes until a seek, as documented, so the run seeks first.
proc ::diff::staleReadAhead {op pending} {
    if {[lindex $op 0] ne "mwrite" || $pending == 0} {
	return 0
    }
    lassign $op - offset data
    set P $::model::P
    if {$offset < $P + $pending && $offset + [string length $data] > $P} {
	tally "seek before an mmap::write into read-ahead"
	return 1
    }
    return 0
}

# ----------------------------------------------------------------------------
# Running one operation on both sides
# ----------------------------------------------------------------------------

# onChannel op --	perform op on the mmap channel, return its value
proc ::diff::onChannel {op} {
    variable ch
    switch -- [lindex $op 0] {
	seek {
	    lassign $op - offset origin
	    if {$origin eq ""} {
		return [::seek $ch $offset]
	    }
	    return [::seek $ch $offset $origin]
	}
	read {
	    if {[lindex $op 1] eq "all"} {
		return [::read $ch]
	    }
	    return [::read $ch [lindex $op 1]]
	}
	gets {
	    if {[lindex $op 1] eq "plain"} {
		return [::gets $ch]
	    }
	    set count [::gets $ch line]
	    return [list $count $line]
	}
	puts {
	    if {[lindex $op 1] eq "newline"} {
		return [::puts $ch [lindex $op 2]]
	    }
	    return [::puts -nonewline $ch [lindex $op 2]]
	}
	tell {
	    return [::tell $ch]
	}
	eof {
	    return [::eof $ch]
	}
	file {
	    return [fileRegion]
	}
	mread {
	    lassign $op - offset count
	    if {$count eq "all"} {
		return [mmap::read $ch $offset]
	    }
	    return [mmap::read $ch $offset $count]
	}
	mwrite {
	    lassign $op - offset data
	    return [mmap::write $ch $offset $data]
	}
    }
}

# onModel op pending --	perform op on the model, return {code value}
proc ::diff::onModel {op pending} {
    variable ch
    switch -- [lindex $op 0] {
	seek {
	    lassign $op - offset origin
	    return [::model::seek $offset $origin $pending $ch]
	}
	read {
	    return [::model::read [lindex $op 1]]
	}
	gets {
	    return [::model::gets [lindex $op 1]]
	}
	puts {
	    set data [lindex $op 2]
	    if {[lindex $op 1] eq "newline"} {
		append data \n
	    }
	    return [::model::write $data]
	}
	tell {
	    return [list 0 $::model::P]
	}
	eof {
	    return [list 0 $::model::E]
	}
	file {
	    # What the file holds in the region while the mapping is live.
	    variable config
	    if {[dict get $config shared]} {
		return [list 0 $::model::M]
	    }
	    return [list 0 [dict get $config region]]
	}
	mread {
	    return [::model::mread [lindex $op 1] [lindex $op 2] $ch]
	}
	mwrite {
	    return [::model::mwrite [lindex $op 1] [lindex $op 2] $ch]
	}
    }
}

# fileRegion --	the region's bytes as the file holds them, read through an
#		ordinary channel
proc ::diff::fileRegion {} {
    variable path
    variable config
    set f [open $path r]
    fconfigure $f -translation binary
    ::seek $f [dict get $config offset]
    set data [::read $f [dict get $config length]]
    close $f
    encoding convertfrom iso8859-1 $data
}

# step op --	run op on both sides and compare; returns 1 if they agree,
#		else reports the divergence and returns 0.
proc ::diff::step {op} {
    variable ch
    variable verbose
    set pending [chan pending input $ch]
    lassign [onModel $op $pending] mcode mvalue
    set ccode [catch {onChannel $op} cvalue]
    if {$ccode != $mcode} {
	return [diverge $op "result" [list $mcode $mvalue] [list $ccode $cvalue]]
    }
    if {$cvalue ne $mvalue} {
	return [diverge $op "result" [list $mcode $mvalue] [list $ccode $cvalue]]
    }
    set t [::tell $ch]
    set e [::eof $ch]
    if {$verbose} {
	say [format "%5d %-40s -> %s   tell %d eof %d pending %d" \
		 $::diff::opNo [describeOp $op] [describeResult $ccode $cvalue] \
		 $t $e [chan pending input $ch]]
    }
    if {$t != $::model::P} {
	return [diverge $op "tell after the operation" $::model::P $t]
    }
    if {$e != $::model::E} {
	return [diverge $op "eof after the operation" $::model::E $e]
    }
    set pending [chan pending input $ch]
    if {$pending < 0 || $::model::P + $pending > $::model::L} {
	return [diverge $op "read-ahead within the region (tell + pending <= length)" \
		    "at most [expr {$::model::L - $::model::P}]" $pending]
    }
    return 1
}

# ----------------------------------------------------------------------------
# Reporting
# ----------------------------------------------------------------------------

proc ::diff::say {text} {
    puts stdout $text
    flush stdout
}

# escape s --	s with newlines, control and non-ASCII bytes made visible
proc ::diff::escape {s} {
    set out ""
    foreach c [split $s ""] {
	scan $c %c code
	if {$code == 10} {
	    append out \\n
	} elseif {$code == 92} {
	    append out \\\\
	} elseif {$code < 32 || $code > 126} {
	    append out [format \\x%02x $code]
	} else {
	    append out $c
	}
    }
    return $out
}

# excerpt s ?from? --	a readable piece of s: all of it when short, else
#			40 bytes from $from on, with the total length
proc ::diff::excerpt {s {from 0}} {
    set n [string length $s]
    if {$n <= 80 && $from == 0} {
	return "\"[escape $s]\" ($n bytes)"
    }
    set from [expr {max(0, $from)}]
    return "$n bytes, from byte $from: \"[escape [string range $s $from $from+39]]\""
}

proc ::diff::describeOp {op} {
    switch -- [lindex $op 0] {
	seek {
	    lassign $op - offset origin
	    return [string trim "seek $offset $origin"]
	}
	read {
	    return [expr {[lindex $op 1] eq "all" ? "read" : "read [lindex $op 1]"}]
	}
	gets {
	    return [expr {[lindex $op 1] eq "plain" ? "gets ch" : "gets ch var"}]
	}
	puts {
	    set data [lindex $op 2]
	    set flag [expr {[lindex $op 1] eq "newline" ? "" : "-nonewline "}]
	    return "puts ${flag}[excerpt $data]"
	}
	file {
	    return "(compare the file's region while mapped)"
	}
	mread {
	    lassign $op - offset count
	    return [string trim "mmap::read $offset [string map {all {}} $count]"]
	}
	mwrite {
	    return "mmap::write [lindex $op 1] [excerpt [lindex $op 2]]"
	}
	default {
	    return [lindex $op 0]
	}
    }
}

proc ::diff::describeResult {code value} {
    if {$code} {
	return "error: $value"
    }
    if {[string length $value] > 80} {
	return [excerpt $value]
    }
    return "\"[escape $value]\""
}

# diverge op what model channel --
#	Print everything needed to understand and replay a divergence.
proc ::diff::diverge {op what model channel} {
    variable seed
    variable ops
    variable seqNo
    variable opNo
    variable config
    # Where two long strings first differ, to show both from there.
    set m $model
    set c $channel
    if {$what eq "result"} {
	lassign $model mcode m
	lassign $channel ccode c
	if {$mcode != $ccode} {
	    set m [describeResult $mcode $m]
	    set c [describeResult $ccode $c]
	    set what "result (one side raised an error)"
	}
    }
    if {[string length $m] > 80 || [string length $c] > 80} {
	set i 0
	set n [expr {min([string length $m], [string length $c])}]
	while {$i < $n && [string index $m $i] eq [string index $c $i]} {
	    incr i
	}
	set from [expr {max(0, $i - 8)}]
	set m "[excerpt $m $from] (first difference at byte $i)"
	set c [excerpt $c $from]
    } elseif {$what eq "result"} {
	set m "\"[escape $m]\""
	set c "\"[escape $c]\""
    }
    say "MISMATCH seed $seed sequence $seqNo operation $opNo"
    say "  mapping: [describeConfig]"
    say "  operation: [describeOp $op]"
    say "  compared: $what"
    say "  model:   $m"
    say "  channel: $c"
    say "  model before this step: tell $::diff::before(P) eof $::diff::before(E)"
    replayHint
    return 0
}

# replayHint --	how to run the failing sequence again
proc ::diff::replayHint {} {
    variable seed
    variable ops
    variable seqNo
    say "replay: SEED=$seed OPS=$ops make fuzz"
    say "   or: make shell SCRIPT=\"tests/differential.tcl -seed $seed -seq $seqNo -verbose\""
}

proc ::diff::describeConfig {} {
    variable config
    dict with config {
	return "mmap $mmapArgs \$src: [expr {$shared ? "shared" : "private"}],\
		$length bytes at offset $offset, $after bytes after them;\
		-translation $translation -buffersize $buffersize"
    }
}

# ----------------------------------------------------------------------------
# Sequences
# ----------------------------------------------------------------------------

# pickLength --	a region length from 1 byte to a few pages
proc ::diff::pickLength {} {
    variable page
    variable maxRegion
    set r [rnd 100]
    if {$r < 20} {
	return [between 1 16]
    } elseif {$r < 45} {
	return [between 17 700]
    } elseif {$r < 60} {
	return [expr {max(1, [pick {1 2 3}] * $page + [between -2 2])}]
    } else {
	return [between 701 $maxRegion]
    }
}

# runSequence k nops --
#	Sequence k: a fresh file and mapping, nops random operations, close,
#	check the file.  Returns 1 if all went well.
proc ::diff::runSequence {k nops} {
    variable seed
    variable path
    variable config
    variable ch
    variable seqNo $k
    variable opNo 0
    variable page
    variable verbose
    variable before

    expr {srand([seqSeed $seed $k])}
    # Shared/private and binary/default translation take turns, so every
    # combination is run equally often.
    set shared [expr {$k % 2}]
    set translation [expr {($k / 2) % 2 ? "auto" : "binary"}]
    set data [expr {$translation eq "binary" ? "binary" : "text"}]
    set length [pickLength]
    set r [rnd 10]
    if {$r < 2} {
	set offset 0
    } elseif {$r < 3} {
	set offset [expr {$page * [between 1 2]}]
    } else {
	set offset [between 1 [expr {2 * $page + 100}]]
    }
    set after [expr {[rnd 3] ? [between 1 5000] : 0}]
    set lengthGiven [expr {$after > 0 || [rnd 2]}]
    set buffersize [pick {4096 4096 4096 1 7 100 1000 10000}]
    set prefix [randomBytes $data $offset]
    set region [randomBytes $data $length]
    set suffix [randomBytes $data $after]
    set config [dict create shared $shared translation $translation \
		    data $data offset $offset length $length after $after \
		    lengthGiven $lengthGiven buffersize $buffersize region $region]

    set f [open $path w]
    fconfigure $f -translation binary
    ::puts -nonewline $f [encoding convertto iso8859-1 $prefix$region$suffix]
    close $f

    set args {}
    if {$shared} {
	lappend args -shared
    }
    if {$offset > 0 || [rnd 2]} {
	lappend args -offset $offset
    }
    if {$lengthGiven} {
	lappend args -length $length
    }
    dict set config mmapArgs $args
    set src [open $path r+]
    if {[catch {mmap {*}$args $src} ch]} {
	close $src
	say "MISMATCH seed $seed sequence $k: mmap $args failed: $ch"
	say "  mapping: [describeConfig]"
	replayHint
	return 0
    }
    close $src
    if {$translation eq "binary"} {
	fconfigure $ch -translation binary
    }
    if {$buffersize != 4096} {
	fconfigure $ch -buffersize $buffersize
    }
    if {$verbose} {
	say "sequence $k: [describeConfig], $nops operations, channel $ch"
    }
    ::model::init $region

    set ok 1
    for {set opNo 1} {$opNo <= $nops} {incr opNo} {
	set op [randomOp]
	set before(P) $::model::P
	set before(E) $::model::E
	if {[staleReadAhead $op [chan pending input $ch]]
		&& ![step [list seek 0 current]]} {
	    set ok 0
	    break
	}
	if {![step $op]} {
	    set ok 0
	    break
	}
    }

    if {[catch {close $ch} msg]} {
	say "MISMATCH seed $seed sequence $k: closing $ch failed: $msg"
	say "  mapping: [describeConfig]"
	replayHint
	return 0
    }
    if {!$ok} {
	return 0
    }
    # The whole file, through an ordinary channel.
    set f [open $path r]
    fconfigure $f -translation binary
    set now [encoding convertfrom iso8859-1 [::read $f]]
    close $f
    # (Not [expr {$shared ? ...}]: expr would turn a region such as "5\n"
    # into the number 5.)
    if {$shared} {
	set want $prefix$::model::M$suffix
    } else {
	set want $prefix$region$suffix
    }
    if {$now ne $want} {
	set n [expr {min([string length $now], [string length $want])}]
	for {set i 0} {$i < $n && [string index $now $i] eq [string index $want $i]} {incr i} {}
	set where [expr {$i < $offset ? "before the region"
			 : $i < $offset + $length ? "inside the region (byte [expr {$i - $offset}])"
			 : "after the region"}]
	say "MISMATCH seed $seed sequence $k: after close the file differs at byte $i, $where"
	say "  mapping: [describeConfig]"
	say "  expected: [excerpt $want [expr {max(0, $i - 8)}]] ([string length $want] bytes in all)"
	say "  file:     [excerpt $now [expr {max(0, $i - 8)}]] ([string length $now] bytes in all)"
	replayHint
	return 0
    }
    return 1
}

# ----------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------

proc ::diff::usage {msg} {
    puts stderr "differential.tcl: $msg"
    puts stderr "usage: tclsh differential.tcl ?-seed N? ?-ops N? ?-seq K? ?-verbose?"
    exit 2
}

proc ::diff::main {argv} {
    variable seed
    variable ops
    variable onlySeq
    variable verbose
    variable path

    global env
    if {[info exists env(SEED)] && $env(SEED) ne ""} {
	set seed $env(SEED)
    }
    if {[info exists env(OPS)] && $env(OPS) ne ""} {
	set ops $env(OPS)
    }
    for {set i 0} {$i < [llength $argv]} {incr i} {
	set opt [lindex $argv $i]
	switch -- $opt {
	    -seed - -ops - -seq {
		if {$i + 1 >= [llength $argv]} {
		    usage "$opt needs a value"
		}
		set value [lindex $argv [incr i]]
		switch -- $opt {
		    -seed {set seed $value}
		    -ops  {set ops $value}
		    -seq  {set onlySeq $value}
		}
	    }
	    -verbose {
		set verbose 1
	    }
	    default {
		usage "unknown option \"$opt\""
	    }
	}
    }
    if {$seed eq ""} {
	set seed [expr {[clock microseconds] % 2147483647 + 1}]
    }
    if {$ops eq ""} {
	set ops 100000
    }
    if {![string is entier -strict $seed] || $seed < 1 || $seed >= 2147483647} {
	usage "the seed must be an integer from 1 to 2147483646, not \"$seed\""
    }
    if {![string is entier -strict $ops] || $ops < 1} {
	usage "the number of operations must be a positive integer, not \"$ops\""
    }
    if {$onlySeq ne "" && (![string is entier -strict $onlySeq] || $onlySeq < 0)} {
	usage "-seq wants a sequence number, not \"$onlySeq\""
    }
    say "seed $seed"

    set start [clock milliseconds]
    expr {srand($seed)}
    makePools
    close [file tempfile path mmap-differential]

    set done 0	;# operations generated so far (all sequences)
    set ran 0	;# operations actually run
    set seqs 0	;# sequences actually run
    set k 0
    set ok 1
    while {$done < $ops && ($onlySeq eq "" || $k <= $onlySeq)} {
	# The length of sequence k depends only on the seed and k.
	expr {srand([seqSeed $seed $k] ^ 0x5a5a5a)}
	set n [expr {min(200 + int(rand() * 801), $ops - $done)}]
	if {$onlySeq eq "" || $onlySeq == $k} {
	    incr seqs
	    if {![runSequence $k $n]} {
		set ok 0
		break
	    }
	    incr ran $n
	}
	incr done $n
	incr k
    }
    file delete $path
    if {!$ok} {
	exit 1
    }
    if {$seqs == 0} {
	usage "there is no sequence $onlySeq in $ops operations"
    }
    set secs [expr {([clock milliseconds] - $start) / 1000.0}]
    variable count
    set cases {}
    foreach what [lsort [array names count]] {
	lappend cases "$what $count($what)"
    }
    say "cases: [join $cases {, }]"
    say [format "differential: %d ops, %d sequences, %.1f seconds (%.0f ops/s), seed %d" \
	     $ran $seqs $secs [expr {$secs > 0 ? $ran / $secs : 0}] $seed]
    exit 0
}

::diff::main $::argv
