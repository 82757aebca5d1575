# vsfile-fcopy-from.tcl ?seed? -- random fcopy (translations, encodings,
# buffer sizes, -size, start positions) from a file channel and from an
# mmap channel on copies of one file into plain files: results, positions
# and the bytes copied must be the same.
package require mmap
expr {srand([lindex $argv 0])}
proc rnd {n} {expr {int(rand()*$n)}}
proc pick {l} {lindex $l [rnd [llength $l]]}
set dir [file normalize fcopy.tmp]; file mkdir $dir
set fails 0
for {set run 0} {$run < 300} {incr run} {
  set size [expr {1+[rnd 20000]}]
  set s ""; while {[string length $s] < $size} {append s [pick {a b \n \r\n \xe9 \u4e4d \0 xyz}]}
  set bytes [string range [encoding convertto utf-8 $s] 0 $size-1]; set size [string length $bytes]
  foreach w {a b src} {set f [open $dir/$w wb]; puts -nonewline $f $bytes; close $f}
  set opts [list -translation [pick {auto binary crlf lf cr}] -encoding [pick {utf-8 binary iso8859-1 unicode}] -buffersize [pick {1 10 4096 65536}]]
  set sopts [list -translation [pick {binary lf crlf}] -encoding [pick {utf-8 binary}]]
  set start [rnd $size]
  set n [pick {-1 0 1 100 5000 100000}]
  set res {}
  # direction 1: source is file vs mmap, sink plain
  foreach kind {file mmap} {
    set f [open $dir/src r+]
    if {$kind eq "mmap"} {set m [mmap -shared $f]; close $f; set f $m}
    fconfigure $f {*}$opts
    seek $f $start
    set out [open $dir/out.$kind w]; fconfigure $out {*}$sopts
    set r [catch {if {$n < 0} {fcopy $f $out} else {fcopy $f $out -size $n}} msg]
    lappend res [list $r [string map [list $f CH $out OUT] $msg] [tell $f] [eof $f]]
    close $f; close $out
  }
  set ra [open $dir/out.file rb]; set rb [open $dir/out.mmap rb]
  set same [expr {[read $ra] eq [read $rb]}]; close $ra; close $rb
  if {[lindex $res 0] ne [lindex $res 1] || !$same} {incr fails; puts "run $run src diff: $res same=$same opts $opts sopts $sopts start $start n $n"}
}
file delete -force $dir
puts "fails $fails"
