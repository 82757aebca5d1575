package ifneeded mmap 1.0 {load /work/wtB/sanitize/libmmap1.0.so Mmap}
proc signalProcess {pid signal} {
    exec /bin/sh -c {kill -s "$1" "$2"} sh $signal $pid
}


    fconfigure stdout -buffering line
    fconfigure stderr -buffering line
    package require mmap

    set ::aliases {}

    # Show channel $chan as $as in printed results; returns $chan.
    proc alias {chan as} {
	lappend ::aliases $chan $as
	return $chan
    }

    proc shown {text} {
	string map [list \n {\n} \0 {\0}] [string map $::aliases $text]
    }

    # Evaluate script in the caller and print one line: "label ok result"
    # or "label error message {first two words of -errorcode}".
    proc probe {label script} {
	if {[catch {uplevel 1 $script} msg opts]} {
	    puts [list $label error [shown $msg]  [lrange [dict get $opts -errorcode] 0 1]]
	} else {
	    puts [list $label ok [shown $msg]]
	}
    }

    # As probe, for an fcopy from the mapping M that must fail with detail
    # (the text after 'error reading "M": ').  Tcl 8.6's fcopy words a
    # driver's error itself, from errno alone ("I/O error"): it never shows
    # a driver's own message (Tcl 8 says "I/O error", Tcl 9 "input/output
    # error").  Either wording is printed as the detailed one, so the test
    # holds whichever Tcl runs it; the -errorcode and what happens to the
    # channel afterwards are checked as usual.
    proc probeCopy {label detail script} {
	if {[catch {uplevel 1 $script} msg opts]} {
	    set msg [shown $msg]
	    if {$msg in {{error reading "M": I/O error}
			 {error reading "M": input/output error}}} {
		set msg "error reading \"M\": $detail"
	    }
	    puts [list $label error $msg  [lrange [dict get $opts -errorcode] 0 1]]
	} else {
	    puts [list $label ok [shown $msg]]
	}
    }

    # 8-byte records "0000000\n", "0000008\n", ...: each holds its offset.
    proc records {size} {
	set text ""
	for {set i 0} {$i < $size} {incr i 8} {
	    append text [format %07d\n $i]
	}
	string range $text 0 [expr {$size - 1}]
    }

    proc zeros {n} {
	string repeat \0 $n
    }

    # The bytes of the file at path (through an ordinary file channel).
    proc fileBytes {path {offset 0} {count -1}} {
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

    # Truncate (or extend) the file through a channel of its own.
    proc shrink {path size} {
	set f [open $path r+]
	chan truncate $f $size
	close $f
    }

    # Map path opened with mode, close the source, switch to binary.
    proc mapIt {path mode args} {
	set src [open $path $mode]
	set m [mmap {*}$args $src]
	close $src
	fconfigure $m -translation binary
	return $m
    }

    # 1 when the file holds the original records, except for the given
    # offset/bytes pairs, up to its current size.
    proc fileIs {path args} {
	set want [records [file size $path]]
	foreach {offset bytes} $args {
	    set want [string replace $want $offset  [expr {$offset + [string length $bytes] - 1}] $bytes]
	}
	expr {[fileBytes $path] eq [string range $want 0 [file size $path]-1]}
    }


	set path [lindex $argv 0]
	set m [alias [mapIt $path r -shared] M]
	set cutter [open |[list [info nameofexecutable] << [list apply {{path} {
	    after 100
	    set f [open $path r+]
	    chan truncate $f 0
	    close $f
	}} $path]] r]
	set rounds 0
	set t0 [clock milliseconds]
	probe loop {
	    while {[clock milliseconds] - $t0 < 5000} {
		seek $m 0
		read $m
		incr rounds
	    }
	}
	close $cutter
	probe rounds {expr {$rounds > 0}}
	probe close {close $m}
	puts end
    
