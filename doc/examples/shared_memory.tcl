# shared_memory.tcl --
#
#	Memory shared between forked Tcl processes, using TclX fork and wait.
#
#	/dev/zero is mapped with -shared -length 4096.  Three children are
#	forked; each writes a greeting into its own 64-byte slot and exits.
#	The parent waits for them and prints what each one wrote.  Then the
#	same is tried with a private mapping (no -shared): the child's write
#	lands in its own copy-on-write copy, and the parent still sees zeros.
#
#	Exits 0 on success (or when TclX is not installed), 1 on failure.
#	It creates no files.

package require mmap
if {[catch {package require Tclx}]} {
    puts "shared_memory: TclX is not installed (package Tclx); skipping the demo"
    exit 0
}

set slotsize 64
set nchildren 3

proc fail {msg} {
    puts stderr "shared_memory: FAILED: $msg"
    exit 1
}

# Fork a child that runs $script and exits 0, or 1 if the script fails.
# Returns the child's pid in the parent.
proc spawn {script} {
    flush stdout
    flush stderr
    set pid [fork]
    if {$pid == 0} {
        if {[catch {uplevel #0 $script} msg]} {
            puts stderr "child [pid]: $msg"
            exit 1
        }
        exit 0
    }
    return $pid
}

# Wait for a child and fail unless it exited with status 0.
proc reap {pid} {
    lassign [wait $pid] - how code
    if {$how ne "EXIT" || $code != 0} {
        fail "child $pid ended with $how $code"
    }
}

proc greeting {slot} {
    return "hello from child $slot"
}

if {[catch {
    # --- Shared mapping -----------------------------------------------
    set z [open /dev/zero r+]
    set mem [mmap -shared -length 4096 $z]
    close $z
    puts "mapped /dev/zero -shared -length 4096 as $mem"

    set pids {}
    for {set slot 0} {$slot < $nchildren} {incr slot} {
        lappend pids [spawn [list apply {{mem slot size} {
            seek $mem [expr {$slot * $size}]
            puts $mem "[greeting $slot] (pid [pid])"
        }} $mem $slot $slotsize]]
    }
    puts "forked children [join $pids {, }]"
    foreach pid $pids {
        reap $pid
    }

    for {set slot 0} {$slot < $nchildren} {incr slot} {
        # seek also discards anything Tcl read ahead earlier.
        seek $mem [expr {$slot * $slotsize}]
        gets $mem text
        set text [string trimright $text \0]   ;# an unwritten slot is all NULs
        set pid [lindex $pids $slot]
        puts "  slot $slot: $text"
        if {$text ne "[greeting $slot] (pid $pid)"} {
            fail "slot $slot holds [list $text]"
        }
    }
    close $mem
    puts "OK: the parent sees what each child wrote"

    # --- Private mapping ----------------------------------------------
    set z [open /dev/zero r+]
    set priv [mmap -length 4096 $z]
    close $z
    puts "mapped /dev/zero -length 4096 (private) as $priv"

    reap [spawn [list apply {{priv} {
        puts -nonewline $priv "written by the child"
        seek $priv 0
        if {[read $priv 20] ne "written by the child"} {
            error "the child cannot read back its own write"
        }
    }} $priv]]

    seek $priv 0
    set data [read $priv 20]
    close $priv
    if {$data ne [string repeat \0 20]} {
        fail "the parent sees [list $data] in a private mapping"
    }
    puts "OK: the child wrote into its private copy; the parent still\
	    sees 20 NUL bytes"
} msg]} {
    fail $msg
}
exit 0
