# shared_counter.tcl --
#
#	A counter shared by forked processes: four children (TclX fork) each
#	add 1 to a 64-bit word in a -shared mapping of /dev/zero 20,000 times
#	with mmap::incr. Atomic increments lose nothing: the parent reads
#	exactly 80,000. The same done with mmap::read + mmap::write (not
#	atomic) is shown for contrast, under mmap::lock, which makes it safe.
#
#	Exits 0 on success (or when TclX is not installed), 1 on failure.
#	It creates no files.

package require mmap
if {[catch {package require Tclx}]} {
    puts "shared_counter: TclX is not installed (package Tclx); skipping the demo"
    exit 0
}

set z [open /dev/zero r+]
set mem [mmap -shared -length 4096 $z]
close $z

# Run $script in $n forked children and wait for them all.
proc inChildren {n script} {
    flush stdout
    set pids {}
    for {set k 0} {$k < $n} {incr k} {
	set pid [fork]
	if {$pid == 0} {
	    set status [catch {uplevel #0 $script}]
	    exit $status
	}
	lappend pids $pid
    }
    foreach pid $pids {
	lassign [wait $pid] - how code
	if {$how ne "EXIT" || $code != 0} {
	    puts stderr "shared_counter: FAILED: child $pid ended with $how $code"
	    exit 1
	}
    }
}

# Word 0: the atomic counter.
inChildren 4 {
    for {set i 0} {$i < 20000} {incr i} {
	mmap::incr $mem 0
    }
}
set atomic [mmap::incr $mem 0 0]
puts "mmap::incr from 4 children x 20000: $atomic"

# Word 16: a counter updated by read-modify-write under the lock at 8.
inChildren 4 {
    for {set i 0} {$i < 2000} {incr i} {
	mmap::lock $mem 8 {
	    binary scan [mmap::read $mem 16 8] w n
	    mmap::write $mem 16 [binary format w [incr n]]
	}
    }
}
binary scan [mmap::read $mem 16 8] w locked
puts "locked read-modify-write from 4 children x 2000: $locked"
close $mem

if {$atomic != 80000 || $locked != 8000} {
    puts stderr "shared_counter: FAILED: updates were lost"
    exit 1
}
