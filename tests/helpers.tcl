# helpers.tcl --
#
#	Helpers and test constraints shared by the mmap test files
#	(command.test, channel.test, process.test).  This is not a test file:
#	tests/all.tcl runs only the files matching *.test.  Each test file
#	sources it right after loading the package and imports its commands:
#
#	    package require tcltest 2
#	    namespace import ::tcltest::*
#	    package require mmap
#	    source [file join [file dirname [file normalize [info script]]] helpers.tcl]
#	    namespace import ::mmaptest::*
#
#	Helpers that only one test file needs stay in that file.  All file
#	helpers are binary safe: bytes go in and come out unchanged.

package require tcltest 2

# ----------------------------------------------------------------------------
# Test constraints
# ----------------------------------------------------------------------------

# /dev/zero can be opened r+ (some tests map it read/write).
::tcltest::testConstraint devZero \
    [expr {[file readable /dev/zero] && [file writable /dev/zero]}]
# TclX gives [fork], [wait] and [kill].  Under Tcl 9 a child tclsh tries it
# first: a TclX built for Tcl 8 (Debian 12 has no other) found on the
# auto_path crashes the tclsh that loads it.
::tcltest::testConstraint tclx [expr {
    !([package vsatisfies [info tclversion] 9-]
      && [catch {exec [info nameofexecutable] << {package require Tclx}}])
    && ![catch {package require Tclx}]}]
if {![::tcltest::testConstraint tclx]} {
    # Say why the fork tests skip, next to tcltest's count of them.
    puts [::tcltest::outputChannel] "helpers.tcl: tests needing TclX (fork)\
	skip: [expr {[package vsatisfies [info tclversion] 9-]
		     ? "TclX exists only for Tcl 8"
		     : "TclX (Debian: tclx8.4) is not installed"}]"
}
# The Thread package ([thread::create], [thread::transfer], ...).
::tcltest::testConstraint thread [expr {![catch {package require Thread}]}]
# Linux /proc, to watch mappings and descriptors come and go.
::tcltest::testConstraint procfs [expr {[file readable /proc/self/maps]
					&& [file isdirectory /proc/self/fd]}]
::tcltest::testConstraint zlib [llength [info commands ::zlib]]
::tcltest::testConstraint tcloo [expr {![catch {package require TclOO}]}]
# A 5 GiB file mapped whole needs a 64-bit address space.
::tcltest::testConstraint bits64 [expr {$::tcl_platform(pointerSize) >= 8}]

namespace eval ::mmaptest {
    namespace export writeBytes tempFile readBytes sparseFile allBytes \
	mapFile mapFileAsIs tclOptions badOptionMessage posixText waitVar \
	procState signalProcess killHard runScript crc32c poke slowSample

    # How long (ms) [runScript] lets a child tclsh run before killing it.
    variable childTimeout 5000
}

# ----------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------

# writeBytes path bytes --
#	Create or replace the file $path so that it holds exactly $bytes.
proc ::mmaptest::writeBytes {path bytes} {
    set f [open $path w]
    fconfigure $f -translation binary
    puts -nonewline $f $bytes
    close $f
    return $path
}

# tempFile name bytes --
#	Create (or replace) the file $name in tcltest's temporary directory,
#	holding exactly $bytes, and return its full normalized path.  The file
#	is made with [makeFile], so [removeFile] or the end of the test file
#	([cleanupTests]) removes it even when a test fails to.
proc ::mmaptest::tempFile {name bytes} {
    set path [file normalize [::tcltest::makeFile {} $name]]
    writeBytes $path $bytes
    return $path
}

# readBytes path ?offset? ?count? --
#	The bytes of the file $path from $offset on (default 0): $count of them,
#	or all up to the end when count is negative or not given.  Read through
#	an ordinary file channel, so independent of the mmap channel driver.
proc ::mmaptest::readBytes {path {offset 0} {count -1}} {
    set f [open $path r]
    fconfigure $f -translation binary
    seek $f $offset
    if {$count < 0} {
	set bytes [read $f]
    } else {
	set bytes [read $f $count]
    }
    close $f
    return $bytes
}

# sparseFile name size ?offset bytes ...? --
#	Create the sparse file $name in the temporary directory (as [tempFile])
#	with a size of $size bytes, all zero except for the given bytes written
#	at the given offsets; returns its full path.
proc ::mmaptest::sparseFile {name size args} {
    set path [tempFile $name ""]
    set f [open $path w+]
    fconfigure $f -translation binary
    chan truncate $f $size
    foreach {offset bytes} $args {
	seek $f $offset
	puts -nonewline $f $bytes
    }
    close $f
    return $path
}

# allBytes --
#	Every byte value from 0 to 255, once each, in order.
proc ::mmaptest::allBytes {} {
    set codes {}
    for {set i 0} {$i < 256} {incr i} {
	lappend codes $i
    }
    binary format c* $codes
}

# ----------------------------------------------------------------------------
# Mapping
# ----------------------------------------------------------------------------

# mapFileAsIs path mode ?option ...? --
#	Open $path (a file or a device such as /dev/zero) with the open mode
#	$mode, map it with the given [mmap] options, close the source channel
#	again at once and return the mmap channel, configured as [mmap] made it
#	(for tests of the defaults, of text and of translations).
proc ::mmaptest::mapFileAsIs {path mode args} {
    set src [open $path $mode]
    try {
	return [mmap {*}$args $src]
    } finally {
	close $src
    }
}

# mapFile path mode ?option ...? --
#	As [mapFileAsIs], with the mmap channel switched to -translation binary
#	so that bytes come through unchanged.
proc ::mmaptest::mapFile {path mode args} {
    set m [mapFileAsIs $path $mode {*}$args]
    fconfigure $m -translation binary
    return $m
}

# ----------------------------------------------------------------------------
# Texts that Tcl 8.6 and Tcl 9 word differently
# ----------------------------------------------------------------------------

# Tcl 9 shows Tcl's own channel options a little differently from 8.6: it
# adds -profile (strict by default); -eofchar has only an input side, so
# an unset -eofchar is {} on every channel, where 8.6 says {{} {}} for a
# read/write one; and the encoding "binary" is shown as iso8859-1, the
# encoding Tcl 9 uses for it.  The two helpers below let a test state the
# 8.6 form once and compare with what the running Tcl says.

# tclOptions ?option value ...? --
#	The given list of Tcl's own options and values (as Tcl 8.6 lists
#	them) turned into what this Tcl's [fconfigure] lists: unchanged under
#	8.6; under Tcl 9 an -eofchar of {{} {}} becomes {}, -profile strict
#	follows -eofchar, and -encoding binary becomes iso8859-1.
proc ::mmaptest::tclOptions {args} {
    if {![package vsatisfies [info tclversion] 9-]} {
	return $args
    }
    set result {}
    foreach {option value} $args {
	switch -- $option {
	    -eofchar {
		if {$value eq {{} {}}} {
		    set value {}
		}
		lappend result -eofchar $value -profile strict
	    }
	    -encoding {
		if {$value eq "binary"} {
		    set value iso8859-1
		}
		lappend result -encoding $value
	    }
	    default {
		lappend result $option $value
	    }
	}
    }
    return $result
}

# badOptionMessage name --
#	Tcl's message for the unknown option $name of an mmap channel: Tcl's
#	own options (this Tcl's), then the mmap driver's.
proc ::mmaptest::badOptionMessage {name} {
    set options [dict keys [tclOptions -blocking 1 -buffering 1 \
	-buffersize 1 -encoding 1 -eofchar 1 -translation 1]]
    lappend options -length -offset -shared
    return "bad option \"$name\": should be one of [join $options {, }], or -sync"
}

# posixText name --
#	The text this Tcl gives the POSIX error $name (EIO, ENOMEM, ...) in
#	error messages and as the third word of -errorcode.  Tcl 8.6 has
#	wordings of its own; Tcl 9 takes the C library's (glibc's, with a
#	lower-case first letter).  Knows the errors the tests meet; another
#	name is an error here, to be added to the tables.
proc ::mmaptest::posixText {name} {
    set tcl8 {
	EIO {I/O error}		ENOMEM {not enough memory}
	EBADF {bad file number}	EOVERFLOW {file too big}
	EPERM {not owner}	ESPIPE {invalid seek}
    }
    set tcl9 {
	EIO {input/output error}	ENOMEM {cannot allocate memory}
	EBADF {bad file descriptor}
	EOVERFLOW {value too large for defined data type}
	EPERM {operation not permitted}	ESPIPE {illegal seek}
    }
    set same {
	EINVAL {invalid argument}	ENOSPC {no space left on device}
	ENODEV {no such device}		EACCES {permission denied}
	ENOENT {no such file or directory}
    }
    set texts [expr {[package vsatisfies [info tclversion] 9-] ? $tcl9 : $tcl8}]
    return [dict get [dict merge $same $texts] $name]
}

# ----------------------------------------------------------------------------
# Events
# ----------------------------------------------------------------------------

# waitVar var ?ms? --
#	[vwait] for the global variable $var (give it fully qualified, e.g.
#	::fe) and return its value.  A timer sets it to "timeout" after $ms
#	milliseconds, so that a handler that never fires makes the test fail
#	instead of hanging.
proc ::mmaptest::waitVar {var {ms 5000}} {
    set id [after $ms [list set $var timeout]]
    vwait $var
    after cancel $id
    return [set $var]
}

# ----------------------------------------------------------------------------
# Child processes
# ----------------------------------------------------------------------------

# procState pid --
#	Run state of process $pid from /proc/PID/stat (R, S, Z, ...), or ""
#	when there is no such process (or no /proc).
proc ::mmaptest::procState {pid} {
    if {[catch {open /proc/$pid/stat r} f]} {
	return ""
    }
    set stat [read $f]
    close $f
    # The command name in parentheses may contain blanks; the state is the
    # first field after it.
    return [lindex [string range $stat [string last ) $stat]+1 end] 0]
}

# signalProcess pid signal --
#	Send $signal (a name without SIG: KILL, BUS, TERM...) to $pid through
#	the shell's built-in kill, which every POSIX system has: neither TclX
#	nor /bin/kill is needed. Errors (no such process) are raised.
proc ::mmaptest::signalProcess {pid signal} {
    exec /bin/sh -c {kill -s "$1" "$2"} sh $signal $pid
}

# killHard pid --
#	Send SIGKILL to $pid; no error when it is already gone.
proc ::mmaptest::killHard {pid} {
    catch {signalProcess $pid KILL}
}

# runScript script ?arg ...? --
#	Run the Tcl script $script (text) in a child tclsh (tcltest's
#	[interpreter]) with the given command-line arguments and return all it
#	wrote to stdout and stderr.  The child is first told where this process
#	found the mmap package, so it loads the same library even when
#	TCLLIBPATH is not set.  A child still running after childTimeout ms is
#	killed and "(killed: timeout)" is appended; an exit with a non-zero
#	status or by a signal appends "(close: <message>)".
proc ::mmaptest::runScript {script args} {
    variable childTimeout
    set version [package present mmap]
    set prelude [list package ifneeded mmap $version \
		     [package ifneeded mmap $version]]
    set file [::tcltest::makeFile $prelude\n$script mmaptest-child.tcl]
    try {
	set chan [open |[list [::tcltest::interpreter] $file {*}$args 2>@1] r]
	fconfigure $chan -blocking 0
	set out {}
	set deadline [expr {[clock milliseconds] + $childTimeout}]
	while {![eof $chan] && [clock milliseconds] <= $deadline} {
	    append out [read $chan]
	    after 5
	}
	set pid [lindex [pid $chan] 0]
	while {[procState $pid] ni {Z X {}}
		&& [clock milliseconds] <= $deadline} {
	    after 5
	}
	if {[procState $pid] ni {Z X {}}} {
	    killHard $pid
	    append out "(killed: timeout)"
	}
	fconfigure $chan -blocking 1
	if {[catch {close $chan} msg]} {
	    append out "(close: $msg)"
	}
	return $out
    } finally {
	::tcltest::removeFile mmaptest-child.tcl
    }
}

# ----------------------------------------------------------------------------
# Log files
# ----------------------------------------------------------------------------

# crc32c bytes --
#	The CRC32C (Castagnoli) of a byte string, bit by bit: for the short
#	headers tests forge or repair.
proc ::mmaptest::crc32c {bytes} {
    set crc 0xFFFFFFFF
    binary scan $bytes cu* values
    foreach b $values {
	set crc [expr {$crc ^ $b}]
	for {set k 0} {$k < 8} {incr k} {
	    set crc [expr {($crc & 1) ? (($crc >> 1) ^ 0x82F63B78) : ($crc >> 1)}]
	}
    }
    return [expr {$crc ^ 0xFFFFFFFF}]
}

# poke path offset bytes --
#	Overwrite bytes of a file in place.
proc ::mmaptest::poke {path offset bytes} {
    set f [open $path r+]
    fconfigure $f -translation binary
    seek $f $offset
    puts -nonewline $f $bytes
    close $f
}

# slowSample n --
#	1 normally; n under valgrind or a sanitizer build (make valgrind and
#	make test-asan set MMAP_SLOW_CHECKER), where a test that repeats one
#	check over a large corpus takes every n-th case: those runs look for
#	memory errors, which a sample finds as well, at a tenth of the time.
proc ::mmaptest::slowSample {n} {
    expr {[info exists ::env(MMAP_SLOW_CHECKER)] ? $n : 1}
}
