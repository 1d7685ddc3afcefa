# annb_install_strip(KIND DIR TARGET COMPONENT): when installing with
# stripping (`cmake --install --strip`, cpack's CPACK_STRIP_FILES), the rest
# of what Debian's dh_strip does to TARGET's file in DIR (relative to the
# prefix), which CMake's plain `strip` leaves: KIND program or library, the
# .comment and .note sections (compiler versions); archive, its debug
# information (CMake never strips an archive, and that is most of
# libannb.a). Call after TARGET's install() rule, in the same directory.
function(annb_install_strip kind dir target component)
  set(opts --remove-section=.comment --remove-section=.note)
  if(kind STREQUAL "library")
    list(APPEND opts --strip-unneeded)
  elseif(kind STREQUAL "archive")
    list(APPEND opts --strip-debug --enable-deterministic-archives)
  endif()
  string(REPLACE ";" " " opts "${opts}")
  install(CODE "
    if(CMAKE_INSTALL_DO_STRIP)
      execute_process(COMMAND \"${CMAKE_STRIP}\" ${opts}
        \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${dir}/$<TARGET_FILE_NAME:${target}>\"
        COMMAND_ERROR_IS_FATAL ANY)
    endif()" COMPONENT ${component})
endfunction()
