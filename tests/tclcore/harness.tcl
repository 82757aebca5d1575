# harness.tcl -- run one of Tcl's own channel test files with [open] of a
# regular file handing back an mmap channel on that file.
#
#   TCLLIBPATH=/work/wtA tclsh8.6 harness.tcl /path/to/io.test ?tcltest args?
#
# How [open] is rewritten:
#   - pipes ("|cmd"), and anything that is not a regular file after the
#     open (devices, fifos, directories), are left to the real [open];
#   - the file is opened read/write when the mode writes (mmap refuses
#     write-only channels; a test of a write-only channel's refusal to
#     read will therefore fail: a harness artifact);
#   - a file that is empty after the open (new, truncated by w/w+/TRUNC,
#     or just empty) is extended to PAD bytes when the mode writes, so it
#     can be mapped; when the test closes the channel, the file is cut back
#     to its last non-NUL byte (never below its size before the padding).
#     A file opened read-only and empty cannot be mapped: real [open].
#   - append modes: extended by PAD too, the channel seeks to the old end.
#   - then [mmap -shared $f], [close $f]; binary modes ("rb") set
#     -translation binary as the real [open] does.
# Counts of mapped / passed-through opens go to stderr at exit.

package require mmap

namespace eval ::mmapharness {
    variable PAD 1048576
    if {[info exists ::env(MMAPHARNESS_PAD)]} {set PAD $::env(MMAPHARNESS_PAD)}
    variable padded		;# channel -> size before padding
    array set padded {}
    # MMAPHARNESS_FILEDEFAULTS=1: -buffering full, a file channel's default
    variable fileDefaults [expr {[info exists ::env(MMAPHARNESS_FILEDEFAULTS)]
	&& $::env(MMAPHARNESS_FILEDEFAULTS)}]
    # MMAPHARNESS_FILL=ff: padding of that byte (trimmed at close) instead
    # of NULs, for tests whose files end in NUL bytes
    variable fill \x00
    if {[info exists ::env(MMAPHARNESS_FILL)]} {
	set fill [binary format H2 $::env(MMAPHARNESS_FILL)]
    }
    variable stats
    array set stats {mapped 0 passed 0 failed 0}
}

rename ::open ::mmapharness::realOpen
rename ::close ::mmapharness::realClose
rename ::tcl::chan::close ::mmapharness::realChanClose

# Access mode -> {flags-list writes append truncate binary}
proc ::mmapharness::ParseMode {mode} {
    set binary 0
    if {[regexp {^[rwa]\+?b?\+?$} $mode]} {
	if {[string match *b* $mode]} {
	    set binary 1
	    set mode [string map {b {}} $mode]
	}
	switch -- $mode {
	    r  {return [list {RDONLY} 0 0 0 $binary]}
	    r+ {return [list {RDWR} 1 0 0 $binary]}
	    w  {return [list {RDWR CREAT TRUNC} 1 0 1 $binary]}
	    w+ {return [list {RDWR CREAT TRUNC} 1 0 1 $binary]}
	    a  {return [list {RDWR CREAT} 1 1 0 $binary]}
	    a+ {return [list {RDWR CREAT} 1 1 0 $binary]}
	}
	return {}
    }
    # list form
    if {[catch {llength $mode}]} {return {}}
    set flags {}
    set writes 0; set append 0; set trunc 0
    foreach w $mode {
	switch -- $w {
	    RDONLY {lappend flags RDONLY}
	    WRONLY - RDWR {lappend flags RDWR; set writes 1}
	    APPEND {set append 1}
	    TRUNC {lappend flags TRUNC; set trunc 1}
	    BINARY {set binary 1}
	    CREAT - EXCL - NOCTTY - NONBLOCK {lappend flags $w}
	    default {return {}}
	}
    }
    if {[lsearch -regexp $flags {^(RDONLY|RDWR)$}] < 0} {return {}}
    return [list $flags $writes $append $trunc $binary]
}

proc ::mmapharness::passThrough {args} {
    variable stats
    incr stats(passed)
    return [uplevel 1 [list ::mmapharness::realOpen {*}$args]]
}

proc ::open {args} {
    variable ::mmapharness::stats
    variable ::mmapharness::padded
    variable ::mmapharness::PAD
    if {[llength $args] < 1 || [llength $args] > 3} {
	return -code error "wrong # args: should be \"open fileName ?access? ?permissions?\""
    }
    set path [lindex $args 0]
    set mode [expr {[llength $args] > 1 ? [lindex $args 1] : "r"}]
    set parsed [::mmapharness::ParseMode $mode]
    if {[string index $path 0] eq "|" || $parsed eq ""
	    || ([file exists $path] && ![file isfile $path])} {
	return [::mmapharness::passThrough {*}$args]
    }
    lassign $parsed flags writes append trunc binary
    # Let the real [open] refuse what it would refuse (missing file, EXCL,
    # permissions, a bad mode): same message.
    set real [lreplace $args 1 1 $flags]
    if {[llength $real] < 2} {lappend real $flags}
    if {[catch {::mmapharness::realOpen {*}$real} f]} {
	# The real [open] with the test's own mode gives its own message.
	return [::mmapharness::passThrough {*}$args]
    }
    if {![file isfile $path]} {
	::mmapharness::realClose $f
	return [::mmapharness::passThrough {*}$args]
    }
    set size [file size $path]
    set padTo 0
    if {$writes && ($size == 0 || $append)} {
	set padTo [expr {$size + $PAD}]
	if {$::mmapharness::fill eq "\x00"} {
	    chan truncate $f $padTo
	} else {
	    fconfigure $f -translation binary
	    seek $f $size
	    puts -nonewline $f [string repeat $::mmapharness::fill $PAD]
	    flush $f
	}
    } elseif {$size == 0} {
	::mmapharness::realClose $f
	return [::mmapharness::passThrough {*}$args]
    }
    if {[catch {mmap -shared $f} m]} {
	::mmapharness::realClose $f
	incr stats(failed)
	puts stderr "mmapharness: mmap failed on $path ($mode): $m"
	return [::mmapharness::passThrough {*}$args]
    }
    ::mmapharness::realClose $f
    incr stats(mapped)
    if {$padTo} {
	set padded($m) [list $path $size]
    }
    if {$append} {
	seek $m $size
    }
    if {$binary} {
	fconfigure $m -translation binary
    }
    if {$::mmapharness::fileDefaults} {
	fconfigure $m -buffering full
    }
    return $m
}

# Cut a padded file back to its last non-NUL byte, not below its old size.
proc ::mmapharness::Trim {chan} {
    variable padded
    if {![info exists padded($chan)]} return
    lassign $padded($chan) path oldSize
    unset padded($chan)
    if {![file isfile $path]} return
    set g [realOpen $path r+]
    fconfigure $g -translation binary
    set data [read $g]
    set keep [string length [string trimright $data $::mmapharness::fill]]
    if {$keep < $oldSize} {set keep $oldSize}
    if {$keep < [string length $data]} {chan truncate $g $keep}
    realClose $g
}

# [close] and [chan close]: the real command, then the padding trimmed.
proc ::mmapharness::Close {name real args} {
    if {[llength $args] < 1 || [llength $args] > 2} {
	return -code error -errorcode {TCL WRONGARGS} \
	    "wrong # args: should be \"$name channelId ?direction?\""
    }
    set chan [lindex $args 0]
    catch {uplevel 2 [list $real {*}$args]} r opts
    if {[llength $args] == 1 && ![OpenAnywhere $chan]} {
	Trim $chan
    }
    dict incr opts -level 2
    return -options $opts $r
}
proc ::close {args} {
    ::mmapharness::Close close ::mmapharness::realClose {*}$args
}
proc ::tcl::chan::close {args} {
    ::mmapharness::Close {chan close} ::mmapharness::realChanClose {*}$args
}

# A channel shared with another interp stays open after our [close].
proc ::mmapharness::OpenAnywhere {chan {interp {}}} {
    if {$chan in [interp eval $interp {file channels}]} {return 1}
    foreach child [interp children $interp] {
	if {[OpenAnywhere $chan [list {*}$interp {*}$child]]} {return 1}
    }
    return 0
}

# Leaks: mmap channels still open, and mappings of files in the scratch
# directory (where the tests make their files) in /proc/self/maps.
proc ::mmapharness::Report {} {
    variable stats
    set maps 0
    if {![catch {realOpen /proc/self/maps} f]} {
	set dir [pwd]
	foreach line [split [read $f] \n] {
	    if {[string first " $dir/" $line] >= 0} {incr maps}
	}
	realClose $f
    }
    puts stderr "mmapharness: opens mapped $stats(mapped), passed through $stats(passed), mmap failed $stats(failed); at exit: open mmap channels [llength [file channels mmap*]], mappings of scratch files $maps"
}
rename ::exit ::mmapharness::realExit
proc ::exit {{code 0}} {
    ::mmapharness::Report
    ::mmapharness::realExit $code
}

set ::mmapharness::testFile [lindex $::argv 0]
set ::argv [lrange $::argv 1 end]
set ::argv0 $::mmapharness::testFile
source $::mmapharness::testFile
::mmapharness::Report
