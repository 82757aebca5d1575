# handover.tcl --
#
#	A producer and a consumer, two separate tclsh processes, hand items
#	over through one slot in a file they both map -shared. A 64-bit count
#	at offset 0 says whose turn it is (even: the slot is free, odd: it is
#	full); each side sleeps in mmap::wait until the count changes, and
#	wakes the other with mmap::wake after changing it. No polling.
#
#	This script is the producer; it starts itself again as the consumer.
#	Exits 0 on success, 1 on failure. The file is removed at the end.

package require mmap

set items 10
set slot 56	;# bytes, from offset 8

proc attach {path} {
    set f [open $path r+]
    set m [mmap -shared $f]
    close $f
    return $m
}

# Sleep until the count at offset 0 is odd (full: 1) or even (full: 0).
proc awaitCount {m full} {
    while {[set count [mmap::incr $m 0 0]] % 2 != $full} {
	mmap::wait $m 0 $count 10000
    }
}

if {[lindex $argv 0] eq "consumer"} {
    set m [attach [lindex $argv 1]]
    for {set n 0} {$n < $items} {incr n} {
	awaitCount $m 1
	puts [string trimright [mmap::read $m 8 $slot]]
	mmap::incr $m 0		;# even again: the slot is free
	mmap::wake $m 0
    }
    exit 0
}

set path [file join [expr {[info exists env(TMPDIR)] ? $env(TMPDIR) : "/tmp"}] \
	      handover-[pid].bin]
set f [open $path w]
puts -nonewline $f [string repeat \0 64]
close $f
set m [attach $path]
set consumer [open |[list [info nameofexecutable] [info script] consumer $path] r]

for {set n 0} {$n < $items} {incr n} {
    awaitCount $m 0
    mmap::write $m 8 [format %-${slot}s "item $n from process [pid]"]
    mmap::incr $m 0		;# odd: the slot is full
    mmap::wake $m 0
}
set received [read $consumer]
set ok [expr {![catch {close $consumer}]}]
close $m
file delete $path
puts -nonewline "consumer received:\n$received"
if {!$ok || [llength [split [string trim $received] \n]] != $items} {
    puts stderr "handover: FAILED"
    exit 1
}
