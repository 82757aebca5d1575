# logreader.tcl --
#
#	A second reader of mmap::log files, written from doc/logformat.md
#	alone: it shares no code with generic/mmapLog.h (nor with
#	tests/helpers.tcl). It reads a log's bytes as a whole string with
#	[binary scan] and returns what the document says `read` and `info`
#	return for a log no writer is changing: tests/logformat.test runs
#	it next to the package over every kind of log the suite makes and
#	requires the same answer.
#
#	    source logreader.tcl
#	    logreader::readFile path  -> dict (see logreader::readBytes)
#
#	Section numbers below are those of doc/logformat.md.

namespace eval ::logreader {
    # The format versions this reader knows (section 3).
    variable versions {1 2}
    # CRC32C, one table entry per byte value (section 1).
    variable table {}
    for {set i 0} {$i < 256} {incr i} {
	set c $i
	for {set k 0} {$k < 8} {incr k} {
	    set c [expr {($c & 1) ? (($c >> 1) ^ 0x82F63B78) : ($c >> 1)}]
	}
	lappend table $c
    }
    unset i c k
}

# crc bytes --
#	The CRC32C of a byte string.
proc ::logreader::crc {bytes} {
    variable table
    set c 0xFFFFFFFF
    binary scan $bytes cu* values
    foreach b $values {
	set c [expr {[lindex $table [expr {($c ^ $b) & 0xFF}]] ^ ($c >> 8)}]
    }
    return [expr {$c ^ 0xFFFFFFFF}]
}

# text bytes --
#	A payload as the string `read` returns (section 7): where a complete
#	standard UTF-8 sequence starts it is kept; else its longest
#	well-formed start (at least one byte) becomes one U+FFFD.
proc ::logreader::text {bytes} {
    if {![regexp {[\x80-\xFF]} $bytes]} {
	return [encoding convertfrom utf-8 $bytes]
    }
    binary scan $bytes cu* in
    set n [llength $in]
    set out {}
    for {set i 0} {$i < $n} {} {
	lassign [wellFormedStart $in $i $n] len complete
	if {$complete} {
	    lappend out {*}[lrange $in $i [expr {$i + $len - 1}]]
	} else {
	    lappend out 0xEF 0xBF 0xBD
	}
	incr i $len
    }
    return [encoding convertfrom utf-8 [binary format cu* $out]]
}

# How much of a standard UTF-8 sequence starts at index i of the byte list
# in (n bytes): {length 1} for a whole one, else {length 0} with the
# length of its longest well-formed start, at least 1 (section 7, the
# table of well-formed sequences).
proc ::logreader::wellFormedStart {in i n} {
    set lead [lindex $in $i]
    if {$lead < 0x80} {return {1 1}}
    set low 0x80; set high 0xBF
    if {$lead >= 0xC2 && $lead <= 0xDF} {
	set len 2
    } elseif {$lead >= 0xE0 && $lead <= 0xEF} {
	set len 3
	if {$lead == 0xE0} {set low 0xA0}
	if {$lead == 0xED} {set high 0x9F}
    } elseif {$lead >= 0xF0 && $lead <= 0xF4} {
	set len 4
	if {$lead == 0xF0} {set low 0x90}
	if {$lead == 0xF4} {set high 0x8F}
    } else {
	return {1 0}
    }
    if {$i + 1 >= $n} {return {1 0}}
    set second [lindex $in [expr {$i + 1}]]
    if {$second < $low || $second > $high} {return {1 0}}
    set good 2
    while {$good < $len && $i + $good < $n
	   && ([lindex $in [expr {$i + $good}]] & 0xC0) == 0x80} {
	incr good
    }
    return [list $good [expr {$good == $len}]]
}

# readFile path --
#	readBytes over the bytes of the file at path.
proc ::logreader::readFile {path {start 0}} {
    set f [open $path rb]
    set bytes [read $f]
    close $f
    return [readBytes $bytes $start]
}

# readBytes bytes ?start? --
#	What a reader makes of a log file holding bytes, as a dict (start:
#	`read -from`, section 5; damage is then counted from start on):
#	  status   ok, or why the log is refused: notlog, version, header
#	           (checksum or geometry), size (header file size is not the
#	           file's), state (the committed state fails its checks)
#	  list     (ok) the flat list {seq time message ...} `read` returns
#	  oldest next records damaged   (ok) as `info` reports them
#	  generation head tail          (ok) the committed state
proc ::logreader::readBytes {bytes {start 0}} {
    variable versions
    set size [string length $bytes]
    # Section 3, in order.
    if {[string range $bytes 0 7] ne "mmap-log"} {
	return {status notlog}
    }
    if {$size < 48} {
	return {status header}
    }
    binary scan $bytes @8iuiuwuwuwuiuiu version hsize fsize aoff asize reserved hcheck
    if {[crc [string range $bytes 0 43]] != $hcheck} {
	return {status header}
    }
    if {$version ni $versions} {
	return {status version}
    }
    if {$hsize != 4096 || $aoff != 4096 || $fsize < 8192
	    || $asize != (($fsize - 4096) & ~7) || $reserved != 0} {
	return {status header}
    }
    if {$fsize != $size} {
	return {status size}
    }
    # Section 4.2.
    binary scan $bytes @72wu gen
    set slot [expr {80 + ($gen & 1) * 48}]
    binary scan $bytes @${slot}wuwuwuwuwuwu sgen next oldest head tail scheck
    if {$scheck != [crc [string range $bytes $slot [expr {$slot + 39}]]]
	    || $sgen != $gen || $oldest < 1 || $oldest > $next || $next >= (1 << 62)
	    || $head > $asize || $tail >= $asize || ($head & 7) || ($tail & 7)
	    || $next - $oldest > $asize / 32} {
	return {status state}
    }
    set area [string range $bytes 4096 [expr {4096 + $asize - 1}]]
    # Section 5.2: the walk.
    set records {}
    set damaged 0
    set seq $oldest
    set pos $tail
    set walked 0
    set budget [expr {2 * $asize}]
    while {$seq < $next} {
	if {$walked > $budget} {
	    incr damaged [expr {$next - max($seq, $start)}]
	    break
	}
	# Steps 1 and 2: the bound; where the record is (a wrap marker or a
	# short end: 0).
	set at $pos
	set h [header $area $asize $pos]
	if {[lindex $h 0] eq "wrap" && $pos != 0} {
	    set pos 0
	    set h [header $area $asize 0]
	}
	incr walked [ahead $asize $at $pos]
	lassign $h kind number length dcheck time
	set numbered [expr {$kind eq "record" && $number == $seq}]
	if {$numbered && $seq < $start} {
	    # Below -from: stepped over on its header alone.
	    set rs [expr {32 + (($length + 7) & ~7)}]
	    incr pos $rs
	    incr walked $rs
	    incr seq
	    continue
	}
	if {$numbered} {
	    set payload [string range $area [expr {$pos + 32}] [expr {$pos + 31 + $length}]]
	    if {[crc $payload] == $dcheck} {
		lappend records $seq $time [text $payload]
		set rs [expr {32 + (($length + 7) & ~7)}]
		incr pos $rs
		incr walked $rs
		incr seq
		continue
	    }
	}
	# Steps 5 and 6: not sound; scan from pos itself for a candidate.
	set lowest [expr {$numbered ? $seq + 1 : $seq}]
	lassign [scan $area $asize $pos $lowest $next $walked] found pos walked
	set skipTo [expr {$found eq "" ? $next : $found}]
	if {$skipTo > $start} {
	    incr damaged [expr {$skipTo - max($seq, $start)}]
	}
	set seq $skipTo
    }
    return [dict create status ok list $records oldest $oldest next $next \
	records [expr {[llength $records] / 3}] damaged $damaged \
	generation $gen head $head tail $tail]
}

# ahead size from to --
#	Bytes forward from one area offset to another (either may be the
#	area size, which is offset 0).
proc ::logreader::ahead {size from to} {
    set from [expr {$from % $size}]
    set to [expr {$to % $size}]
    return [expr {$to >= $from ? $to - $from : $to + $size - $from}]
}

# header area size pos --
#	What lies at area offset pos (sections 2.4 and 5.1): {wrap} (a wrap
#	marker, or fewer than 32 bytes before the end), {invalid}, or
#	{record number length payloadCheck time}.
proc ::logreader::header {area size pos} {
    if {$pos + 32 > $size} {
	return wrap
    }
    binary scan $area @${pos}iuiuwuwiuiu magic length number time dcheck hcheck
    if {$magic == 0x44415052} {
	return wrap
    }
    if {$magic != 0x43455252
	    || [crc [string range $area $pos [expr {$pos + 27}]]] != $hcheck
	    || 32 + (($length + 7) & ~7) > $size - $pos} {
	return invalid
    }
    return [list record $number $length $dcheck $time]
}

# ----------------------------------------------------------------------------
# A writer, from sections 9 and 11.2: the fence, then one append. It
# takes no lock: it may only be used on the bytes of a log no process has
# open (Tcl cannot take the locks of section 9.1), which is all
# tests/logformat.test needs of it: the package and this code append the
# same message to copies of one log, and must leave the same bytes.
# ----------------------------------------------------------------------------

# appendBytes bytes payload time --
#	The bytes of the log after a writer that just opened it fenced it
#	(section 11.2) and appended one record of the payload bytes (UTF-8
#	already) stamped time. bytes must pass readBytes with status ok.
proc ::logreader::appendBytes {bytes payload time} {
    binary scan $bytes @32wu asize
    binary scan $bytes @72wu gen
    binary scan $bytes @[expr {80 + ($gen & 1) * 48}]x8wuwuwuwu next oldest head tail
    set area [string range $bytes 4096 [expr {4096 + $asize - 1}]]
    set rest [string range $bytes [expr {4096 + $asize}] end]
    set header [string range $bytes 0 4095]

    # Section 11.2: the fence.
    set s $oldest
    set p $tail
    for {set covered 0} {$covered < $asize} {} {
	set step 8
	if {$p + 32 <= $asize} {
	    binary scan $area @${p}iuiuwu@[expr {$p + 24}]iuiu magic length number dcheck hcheck
	    if {$magic == 0x43455252
		    && [crc [string range $area $p [expr {$p + 27}]]] == $hcheck} {
		if {$number >= $next} {
		    set area [string replace $area $p [expr {$p + 31}] [string repeat \0 32]]
		} elseif {$number >= $s && 32 + (($length + 7) & ~7) <= $asize - $p} {
		    set s [expr {$number + 1}]
		    if {[crc [string range $area [expr {$p + 32}] \
			    [expr {$p + 31 + $length}]]] == $dcheck} {
			set step [expr {32 + (($length + 7) & ~7)}]
		    }
		}
	    }
	}
	incr covered $step
	incr p $step
	if {$p >= $asize} {
	    incr p -$asize
	}
    }

    # Section 9.2.
    set n [string length $payload]
    set size [expr {32 + (($n + 7) & ~7)}]
    set place [expr {$head + $size <= $asize ? $head : 0}]
    set span [expr {$place == $head ? $size : $asize - $head + $size}]
    set walked 0
    set dropped 0
    while {$next > $oldest} {
	set free [expr {($tail + $asize - $head % $asize) % $asize}]
	if {$free >= $span && $next - $oldest < $asize / 32} {
	    break
	}
	# Section 9.3: drop the oldest.
	set dropped 1
	set p $tail
	if {[lindex [header $area $asize $p] 0] eq "wrap" && $p != 0} {
	    incr walked [expr {$asize - $p}]
	    set p 0
	}
	lassign [header $area $asize $p] kind number length
	set found 1
	if {$kind eq "record" && $number == $oldest} {
	    set rs [expr {32 + (($length + 7) & ~7)}]
	    incr p $rs
	    incr walked $rs
	    incr oldest
	} else {
	    lassign [scan $area $asize $p [expr {$oldest + 1}] $next $walked] m p walked
	    if {$m eq ""} {
		set found 0
	    } else {
		set oldest $m
	    }
	}
	if {!$found || $oldest == $next} {
	    set oldest $next
	    set tail [expr {$head % $asize}]
	} else {
	    set tail [expr {$p >= $asize ? 0 : $p}]
	}
    }
    if {$dropped} {
	set header [commit $header [incr gen] $next $oldest $head $tail]
    }
    if {$place != $head && $head + 8 <= $asize} {
	set area [string replace $area $head [expr {$head + 7}] \
	    [binary format iuiu 0x44415052 0]]
    }
    set h [binary format iuiuwwiu 0x43455252 $n $next $time [crc $payload]]
    set record $h[binary format iu [crc $h]]$payload[string repeat \0 [expr {$size - 32 - $n}]]
    set area [string replace $area $place [expr {$place + $size - 1}] $record]
    if {$next == $oldest} {
	set tail $place
    }
    incr next
    set head [expr {$place + $size}]
    set header [commit $header [incr gen] $next $oldest $head $tail]
    # Section 9.1: the lock, taken (from a dead holder, if the word named
    # one: no process has the log open) and released, is 0. Section 10:
    # the writable open found no process waiting, so it set a waiters
    # count that was not 0 to 0, and the append then woke no one.
    # Section 14: a version 1 header is upgraded to version 2.
    set header [string replace $header 64 71 [string repeat \0 8]]
    set header [string replace $header 196 199 [string repeat \0 4]]
    binary scan $header @8iu version
    if {$version == 1} {
	set fixed [string replace [string range $header 0 43] 8 11 [binary format iu 2]]
	set header [string replace $header 0 47 $fixed[binary format iu [crc $fixed]]]
    }
    return $header$area$rest
}

# The scan of section 5.2 step 5 from pos for a number in [low, below),
# with walked bytes walked so far: {number pos walked}, number "" when
# none is found.
proc ::logreader::scan {area size pos low below walked} {
    set budget [expr {2 * $size}]
    if {$walked >= $budget} {
	return [list {} $pos $walked]
    }
    set limit [expr {min($size, $budget - $walked)}]
    set from $pos
    set found {}
    for {set scanned 0} {$scanned < $limit} {incr scanned 8} {
	if {$scanned > 0} {
	    set pos [expr {$pos + 8 < $size ? $pos + 8 : 0}]
	}
	lassign [header $area $size $pos] kind number
	if {$kind eq "record" && $number >= $low && $number < $below} {
	    set found $number
	    break
	}
    }
    return [list $found $pos [expr {$walked + [ahead $size $from $pos]}]]
}

# Section 9.4: the header with the state committed as generation gen.
proc ::logreader::commit {header gen next oldest head tail} {
    set slot [binary format wwwww $gen $next $oldest $head $tail]
    set slot $slot[binary format w [crc $slot]]
    set at [expr {80 + ($gen & 1) * 48}]
    set header [string replace $header $at [expr {$at + 47}] $slot]
    return [string replace $header 72 79 [binary format w $gen]]
}
