# cyclic_log.tcl --
#
#	A fixed-size log that always keeps the newest messages.
#
#	The log file has room for 10 records of 32 bytes (31 characters and a
#	newline).  It is mapped with -shared, so writes reach the file, and 25
#	numbered records are logged into it.  Writes that run past the end of
#	the region continue at its start, so afterwards the file still has its
#	original size and holds records 16 to 25.  Once a log has wrapped, the
#	oldest record starts at the current position; the demo prints the log
#	from there, oldest first, and checks the file on disk.
#
#	Exits 0 on success, 1 on failure.  Cleans up its temporary directory.

package require mmap

set slots 10
set width 32
set count 25

set dir [file join /tmp mmap-demo-[pid]]
file mkdir $dir
set path [file join $dir cyclic.log]

proc fail {msg} {
    global dir
    puts stderr "cyclic_log: FAILED: $msg"
    file delete -force $dir
    exit 1
}

proc record {i} {
    global width
    # 31 characters plus the newline that puts adds: exactly one slot.
    format "%-*s" [expr {$width - 1}] [format "message %02d of %d" $i $::count]
}

if {[catch {
    # Create the log at its final size: 10 blank lines of 32 bytes.
    set f [open $path w]
    puts -nonewline $f [string repeat "[string repeat { } [expr {$width-1}]]\n" $slots]
    close $f
    set size [file size $path]
    puts "created $path: $size bytes ($slots records of $width bytes)"

    # Map the whole file.  The source channel can be closed at once.
    set f [open $path r+]
    set log [mmap -shared $f]
    close $f
    fconfigure $log -encoding ascii

    for {set i 1} {$i <= $count} {incr i} {
        puts $log [record $i]
    }
    set here [tell $log]
    puts "logged $count records; the write position is now $here"

    # Oldest first: from the current position to the end, then from the
    # start up to the current position.
    set text [read $log]
    seek $log 0
    append text [read $log $here]
    seek $log $here
    close $log        ;# msync, then munmap

    puts "log contents, oldest first:"
    foreach line [split [string trimright $text \n] \n] {
        puts "  [string trimright $line]"
    }

    # Check what the mapping left in the file itself.
    if {[file size $path] != $size} {
        fail "file size changed from $size to [file size $path]"
    }
    set expected {}
    for {set i [expr {$count - $slots + 1}]} {$i <= $count} {incr i} {
        append expected [record $i] \n
    }
    if {$text ne $expected} {
        fail "log does not hold the newest $slots records in order"
    }
    set f [open $path r]
    set disk [read $f]
    close $f
    set numbers {}
    foreach line [split [string trimright $disk \n] \n] {
        lappend numbers [lindex $line 1]
    }
    puts "the file on disk, slot by slot: [join $numbers { }]"
    set lines [lsort [split [string trimright $disk \n] \n]]
    if {$lines ne [lsort [split [string trimright $expected \n] \n]]} {
        fail "the file on disk does not hold the newest $slots records"
    }
    puts "OK: the file is still $size bytes and holds the newest $slots\
	    of $count records (messages [expr {$count - $slots + 1}] to $count)"
} msg]} {
    fail $msg
}

file delete -force $dir
exit 0
