# read_region.tcl --
#
#	Map part of a file and read it with gets.
#
#	The demo writes a file of 100 numbered lines of 16 bytes each, then
#	maps lines 41 to 45 only: -offset 640 (not a multiple of the page
#	size) and -length 80.  The file is opened with mode r, so the mmap
#	channel is read-only.  Positions on the new channel count from the
#	start of the region, and reading stops with EOF at its end.
#
#	Exits 0 on success, 1 on failure.  Cleans up its temporary directory.

package require mmap

set width 16
set first 41
set nlines 5

set dir [file join /tmp mmap-demo-[pid]]
file mkdir $dir
set path [file join $dir numbered.txt]

proc fail {msg} {
    global dir
    puts stderr "read_region: FAILED: $msg"
    file delete -force $dir
    exit 1
}

proc line {n} {
    # 15 characters plus the newline: 16 bytes.
    format "line %03d of 100" $n
}

if {[catch {
    set f [open $path w]
    for {set n 1} {$n <= 100} {incr n} {
        puts $f [line $n]
    }
    close $f
    puts "wrote $path: [file size $path] bytes, 100 lines of $width bytes"

    set offset [expr {($first - 1) * $width}]
    set length [expr {$nlines * $width}]
    set f [open $path r]
    set m [mmap -offset $offset -length $length $f]
    close $f
    puts "mapped -offset $offset -length $length as $m"

    set got {}
    set pos [tell $m]
    while {[gets $m text] >= 0} {
        puts "  at [format %2d $pos]: $text"
        lappend got $text
        set pos [tell $m]
    }
    set end [tell $m]
    puts "stopped at position $end, eof [eof $m]"

    # The channel is read-only because the source was opened with mode r.
    if {![catch {puts $m "overwrite"} err]} {
        fail "writing to a read-only mapping succeeded"
    }
    puts "writing is refused: $err"
    close $m

    set expected {}
    for {set n $first} {$n < $first + $nlines} {incr n} {
        lappend expected [line $n]
    }
    if {$got ne $expected} {
        fail "read [list $got], expected [list $expected]"
    }
    if {$end != $length} {
        fail "position at EOF is $end, expected $length"
    }
    puts "OK: read lines $first to [expr {$first + $nlines - 1}] and\
	    stopped at the end of the region"
} msg]} {
    fail $msg
}

file delete -force $dir
exit 0
